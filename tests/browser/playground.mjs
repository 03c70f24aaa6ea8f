// Loads the playground in headless Chromium with every other origin
// unreachable, runs a `users` query from the page and reads the result.
// Fails on any request to another origin and on any error the page logs
// (a script the content-security policy blocked, a failed load).
// Usage: node playground.mjs http://127.0.0.1:PORT
import { chromium } from 'playwright-core';

const base = process.argv[2];
const origin = new URL(base).origin;
const query = '{ users(first: 2) { totalCount edges { node { id firstName } } } }';

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
} finally {
  await browser.close();
}
if (foreign.length > 0) problems.push(`requests to other origins: ${foreign.join(', ')}`);
if (problems.length > 0) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log('playground: works offline, no request left the origin');
