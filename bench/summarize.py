#!/usr/bin/env python3
"""Median table and ratios of a bench/run results file (JSON lines)."""
import json
import statistics
import sys

FIELDS = ["ops_per_s", "p50_ms", "p99_ms", "errors", "conflicts", "server_cpu_us_per_op",
          "postgres_cpu_us_per_op", "client_cpu_us_per_op", "statements_per_op", "server_rss_mib",
          "server_anon_mib"]


def main(path):
    runs = {}
    seeds = []
    for line in open(path):
        row = json.loads(line)
        if row["label"].startswith("seed"):
            seeds.append(row)
            continue
        runs.setdefault(row["label"], []).append(row)
    med = {label: {f: statistics.median(r[f] for r in rows if f in r)
                   for f in FIELDS if any(f in r for r in rows)}
           for label, rows in runs.items()}
    print("| run | ops/s | p50 ms | p99 ms | errors | conflicts | server CPU µs/op | "
          "PostgreSQL CPU µs/op | load generator CPU µs/op | statements/op | server RSS MiB | "
          "server anonymous MiB |")
    print("|---" * 12 + "|")
    for label, m in med.items():
        cells = [f"{m[f]:,.2f}".rstrip("0").rstrip(".") if f in m else "–" for f in FIELDS]
        print(f"| {label} ({len(runs[label])} runs) | " + " | ".join(cells) + " |")
    print()

    def ratio(a, b, field="ops_per_s"):
        if a in med and b in med and med[b].get(field):
            return med[a][field] / med[b][field]
        return float("nan")

    for w in ["read", "update", "page"]:
        print(f"- {w}: usergraph / PostGraphile throughput {ratio(f'usergraph-{w}', f'postgraphile-{w}'):.2f}; "
              f"server CPU per op {ratio(f'usergraph-{w}', f'postgraphile-{w}', 'server_cpu_us_per_op'):.2f} of PostGraphile's")
    for w in ["read", "update"]:
        print(f"- {w}: usergraph / pgbench running usergraph's SQL {ratio(f'usergraph-{w}', f'pgbench-{w}'):.2f}")
    for w in ["read", "update", "page"]:
        print(f"- SQLite {w} / PostGraphile {w}: {ratio(f'sqlite-{w}', f'postgraphile-{w}'):.2f}")
    for seed in seeds:
        print(f"- seed of {seed['users']:,} users: PostgreSQL {seed['postgres_s']} s, SQLite {seed['sqlite_s']} s")
    if "usergraph-read-large" in med:
        print(f"- read p50 at the large seed / at {seeds[0]['users']:,} users: "
              f"{ratio('usergraph-read-large', 'usergraph-read', 'p50_ms'):.2f}")


main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/usergraph-bench/results.jsonl")
