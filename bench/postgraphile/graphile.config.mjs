// PostGraphile v5 as bench/run serves it: the peer usergraph is compared with.
// Amber preset, production mode (GRAPHILE_ENV=production), no watch, no GraphiQL, no explain.
// DATABASE_URL: the bench database, set by bench/run.
import { PostGraphileAmberPreset } from "postgraphile/presets/amber";
import { makePgService } from "postgraphile/adaptors/pg";

const connectionString =
  process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:55432/usergraph_bench";
// node-postgres pool size; 10 is PostGraphile's (pg-pool's) default.
const poolMax = Number(process.env.PGL_POOL_MAX ?? 10);

/** @type {GraphileConfig.Preset} */
const preset = {
  extends: [PostGraphileAmberPreset],
  pgServices: [
    makePgService({
      connectionString,
      schemas: ["public"],
      pubsub: false,
      poolConfig: { max: poolMax },
    }),
  ],
  grafserv: {
    host: "127.0.0.1",
    port: Number(process.env.PGL_PORT ?? 5678),
    graphiql: false,
    watch: false,
  },
  grafast: {
    explain: process.env.PGL_EXPLAIN === "1",
  },
};

export default preset;
