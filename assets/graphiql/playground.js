// Starts GraphiQL with the settings the server wrote into the page (a JSON
// block, since the page's content-security policy runs no inline script).
(function () {
  var config = JSON.parse(document.getElementById('playground-config').textContent);
  var query = new URLSearchParams(window.location.search).get('query');
  var root = ReactDOM.createRoot(document.getElementById('graphiql'));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: GraphiQL.createFetcher({ url: config.endpoint, headers: config.headers }),
      defaultQuery: query || undefined,
      query: query || undefined,
      shouldPersistHeaders: false,
    })
  );
})();
