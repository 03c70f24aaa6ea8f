// Loads the playground in headless Chromium with every other origin
// unreachable, runs a `users` query from the page and reads the result;
// then starts a subscription from the page, changes a user over HTTP and
// reads the change from the page. Fails on any request to another origin
// and on any error the page logs (a script or a connection the
// content-security policy blocked, a failed load).
// Usage: node playground.mjs http://127.0.0.1:PORT TOKEN
import { chromium } from 'playwright-core';

const [base, token] = process.argv.slice(2);
const origin = new URL(base).origin;
const query = '{ users(first: 2) { totalCount edges { node { id firstName } } } }';
const subscription =
  'subscription { userEvents { __typename ... on UserChanged { user { id team } } } }';

/** Runs a GraphQL operation over HTTP with the demo token. */
async function graphql(document, variables = {}) {
  const response = await fetch(`${base}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query: document, variables }),
  });
  const body = await response.json();
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data;
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox'],
});
const foreign = [];
const problems = [];
try {
  const page = await browser.newPage();
  // No route to the internet: any other origin is refused, and recorded.
  await page.route('**/*', (route) => {
    const url = route.request().url();
    if (new URL(url).origin === origin) {
      return route.continue();
    }
    foreign.push(url);
    return route.abort('internetdisconnected');
  });
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('requestfailed', (request) =>
    problems.push(`failed: ${request.url()} ${request.failure()?.errorText}`));

  await page.goto(`${base}/graphql?query=${encodeURIComponent(query)}`);
  await page.locator('.graphiql-execute-button').click({ timeout: 15000 });
  const result = page.locator('.result-window');
  await result.getByText('totalCount').waitFor({ timeout: 15000 });
  const text = await result.innerText();
  if (!/"totalCount":\s*5/.test(text)) {
    problems.push(`unexpected result: ${text}`);
  }
  console.log(`playground ran the query; result pane:\n${text.slice(0, 400)}`);

  // A subscription from the page, over the WebSocket.
  await page.goto(`${base}/graphql?query=${encodeURIComponent(subscription)}`);
  await page.locator('.graphiql-execute-button').click({ timeout: 15000 });
  const { users } = await graphql('{ users(first: 1) { edges { node { id updatedAt } } } }');
  const user = users.edges[0].node;
  // The subscription starts a moment after the click: change the user until
  // the page shows the change, for a few seconds at most.
  let version = user.updatedAt;
  let seen = false;
  for (let attempt = 0; attempt < 20 && !seen; attempt++) {
    const team = `Live ${attempt}`;
    const { updateUser } = await graphql(
      `mutation($id: ID!, $v: DateTime!, $team: String) {
         updateUser(id: $id, expectedUpdatedAt: $v, input: { team: $team }) {
           ... on UpdateUserSuccess { user { updatedAt } } } }`,
      { id: user.id, v: version, team });
    version = updateUser.user.updatedAt;
    seen = await result.getByText(team).waitFor({ timeout: 500 }).then(() => true, () => false);
  }
  if (!seen) {
    problems.push(`the subscription showed no change: ${await result.innerText()}`);
  } else {
    console.log('playground received a change through its subscription');
  }
} finally {
  await browser.close();
}
if (foreign.length > 0) problems.push(`requests to other origins: ${foreign.join(', ')}`);
if (problems.length > 0) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log('playground: works offline, no request left the origin');
