// Starts GraphiQL with the settings the server wrote into the page (a JSON
// block, since the page's content-security policy runs no inline script).
// Subscriptions go over a WebSocket to the same endpoint, with the same
// token in `connection_init` (graphql-transport-ws).
(function () {
  var config = JSON.parse(document.getElementById('playground-config').textContent);
  var query = new URLSearchParams(window.location.search).get('query');
  var scheme = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
  var root = ReactDOM.createRoot(document.getElementById('graphiql'));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: GraphiQL.createFetcher({
        url: config.endpoint,
        headers: config.headers,
        subscriptionUrl: scheme + '//' + window.location.host + config.endpoint,
        wsConnectionParams: config.headers,
      }),
      defaultQuery: query || undefined,
      query: query || undefined,
      shouldPersistHeaders: false,
    })
  );
})();
