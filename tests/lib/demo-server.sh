# Sourced by the scripts under tests/ that drive a running server: builds
# usergraph and starts it in demo mode (a new embedded database with five
# users, a fresh token) in a temporary directory, removed on exit.
# Sets: usergraph (the binary), address (http://127.0.0.1:PORT), token.

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/usergraph-target}"
cargo build --quiet
usergraph="$CARGO_TARGET_DIR/debug/usergraph"

demo_work="$(mktemp -d)"
demo_server=""
stop_demo_server() {
    if [ -n "$demo_server" ]; then
        kill "$demo_server" 2>/dev/null || true
        wait "$demo_server" 2>/dev/null || true
    fi
    rm -rf "$demo_work"
}
trap stop_demo_server EXIT

(cd "$demo_work" && exec "$usergraph" --listen 127.0.0.1:0 >"$demo_work/server.log" 2>&1) &
demo_server=$!
address=""
for _ in $(seq 1 100); do
    address="$(grep -o 'http://[0-9.:]*' "$demo_work/server.log" | head -n1 || true)"
    [ -n "$address" ] && break
    sleep 0.1
done
[ -n "$address" ] || { cat "$demo_work/server.log"; exit 1; }
token="$(grep -o 'Bearer ugt_[A-Za-z0-9_-]*' "$demo_work/server.log" | head -n1 | cut -d' ' -f2)"
