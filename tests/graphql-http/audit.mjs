// Runs graphql-http's server audits (the GraphQL over HTTP spec's MUSTs,
// SHOULDs and MAYs) against a running usergraph, sending the API token on
// every request. Fails on any audit that is not `ok`.
// Usage: node audit.mjs http://127.0.0.1:PORT/graphql TOKEN
import { serverAudits } from 'graphql-http';

const [url, token] = process.argv.slice(2);
const fetchFn = (input, init = {}) => {
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${token}`);
  return fetch(input, { ...init, headers });
};

const counts = { ok: 0, warn: 0, notice: 0, error: 0 };
const failures = [];
for (const audit of serverAudits({ url, fetchFn })) {
  const result = await audit.fn();
  counts[result.status] += 1;
  if (result.status !== 'ok') {
    failures.push(`${result.status}: ${audit.name}: ${result.reason}`);
  }
}
console.log(`graphql-http audits: ${counts.ok} ok, ${counts.warn} warn, ${counts.notice} notice, ${counts.error} error`);
if (failures.length > 0) {
  console.error(failures.join('\n'));
  process.exit(1);
}
