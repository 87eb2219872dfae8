// The layering of DESIGN.md ("one folder per layer, data flows downward" and its rules of the house)
// as forbidden dependencies, checked by `npm run lint`. Every rule is an error: an arrow that climbs
// fails the lint. A .cjs file because the package is ESM ("type": "module") and this is CommonJS.
//
// Layers, lowest first: util/ · protocol/ · crypto/ · connection/ · (server/ push/ gateway/ cluster/
// config/ admin/) · api/ · node.ts + keys.ts (the composition root) · cli/. client/ (the SDKs) stands
// beside the server on protocol/, crypto/ and util/ only. test/ and bench/ may import anything, but
// take part in the cycle and resolution checks.

/** Node's built-in modules that do I/O or keep time: a pure layer has no use for them. */
const IO_BUILTINS = [
  'child_process',
  'cluster',
  'dgram',
  'dns',
  'fs',
  'fs/promises',
  'http',
  'http2',
  'https',
  'net',
  'readline',
  'timers',
  'timers/promises',
  'tls',
  'worker_threads',
].map((name) => `^(node:)?${name.replace('/', '\\/')}$`);

/** Every dependency type of a package from node_modules. */
const NPM = ['npm', 'npm-dev', 'npm-optional', 'npm-peer', 'npm-bundled', 'npm-no-pkg', 'npm-unknown'];

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment:
        'No import cycles anywhere (issue 8): a cycle means two modules are one module in two files, ' +
        'and it makes load order matter. Break it by moving the shared part (an interface, a type) ' +
        'into a file both import, or by giving the upper module a narrow view of the lower one.',
      from: { path: '^(src|test|bench)/' },
      to: { circular: true },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment:
        'Every import resolves to a file: an import dependency-cruiser cannot follow would also ' +
        'escape every other rule here.',
      from: { path: '^(src|test|bench)/' },
      to: { couldNotResolve: true },
    },
    {
      name: 'util-imports-only-util',
      severity: 'error',
      comment:
        'util/ holds generic pieces any layer may use (timer wheel, token bucket, type slots, the ' +
        'outbound writer); it imports nothing from src/ but util/.',
      from: { path: '^src/util/' },
      to: { path: '^src/', pathNot: '^src/util/' },
    },
    {
      name: 'protocol-imports-only-protocol-and-util',
      severity: 'error',
      comment:
        'protocol/ is the pure codec (DESIGN: "protocol/ and crypto/ import nothing from the rest"): ' +
        'it imports nothing in src/ outside protocol/ and util/.',
      from: { path: '^src/protocol/' },
      to: { path: '^src/', pathNot: '^src/(protocol|util)/' },
    },
    {
      name: 'crypto-imports-only-crypto-util-and-the-error-shape',
      severity: 'error',
      comment:
        'crypto/ sits on protocol/ only for the one error shape every layer shares ' +
        '(protocol/errors.ts: MPushError, the answer table); otherwise it imports crypto/ and util/.',
      from: { path: '^src/crypto/' },
      to: { path: '^src/', pathNot: '^src/(crypto|util)/|^src/protocol/errors[.]ts$' },
    },
    {
      name: 'protocol-and-crypto-do-no-io',
      severity: 'error',
      comment:
        'DESIGN: protocol/ is a pure codec, "no sockets, no timers, no crypto keys", and crypto/ ' +
        'computes on bytes: neither imports a package or a Node module that does I/O or keeps time.',
      from: { path: '^src/(protocol|crypto)/' },
      to: {
        dependencyTypes: ['core', ...NPM],
        path: ['(^|/)node_modules/', ...IO_BUILTINS],
      },
    },
    {
      name: 'connection-imports-only-protocol-crypto-util',
      severity: 'error',
      comment:
        'DESIGN: "connection/ imports only them" (protocol/ and crypto/), plus util/. A Connection ' +
        'knows its transport, cipher and session, never the server, a store or the config.',
      from: { path: '^src/connection/' },
      to: { path: '^src/', pathNot: '^src/(connection|protocol|crypto|util)/' },
    },
    {
      name: 'client-imports-only-protocol-crypto-util',
      severity: 'error',
      comment:
        'The SDKs (client/device, client/push) run in applications and browsers: they stand on ' +
        'protocol/, crypto/ and util/ only, so importing PushSender loads no server, push center, ' +
        'gateway or cluster code (issue 8).',
      from: { path: '^src/client/' },
      to: { path: '^src/', pathNot: '^src/(client|protocol|crypto|util)/' },
    },
    {
      name: 'client-packages-only-ws',
      severity: 'error',
      comment:
        'Of the packages, the SDKs use only ws (and Node built-ins): no jsep, no ioredis, no zod ' +
        'reaches an application through PushSender or a device client.',
      from: { path: '^src/client/' },
      to: { dependencyTypes: NPM, pathNot: '(^|/)node_modules/(ws|@types/ws)/' },
    },
    {
      name: 'sdk-loads-no-server-code',
      severity: 'error',
      comment:
        "Issue 8's check, transitively: nothing an SDK entry point (client/push, client/device) loads, " +
        'however indirectly, is server code (server/, push/, gateway/, cluster/, api/, config/, the ' +
        "composition root) or one of the server's packages (jsep, ioredis, zod).",
      from: { path: '^src/client/[^/]+/index[.]ts$' },
      to: {
        reachable: true,
        path: [
          '^src/(server|push|gateway|cluster|api|admin|config|cli)/',
          '^src/(node|keys)[.]ts$',
          '(^|/)node_modules/(jsep|ioredis|zod)/',
        ],
      },
    },
    {
      name: 'only-node-imports-api',
      severity: 'error',
      comment:
        'api/ is the HTTP port: the composition root (node.ts) builds it and hands it a narrow view; ' +
        'nothing else imports it (tests and benchmarks may).',
      from: { path: '^src/', pathNot: '^src/(api/|node[.]ts$)' },
      to: { path: '^src/api/' },
    },
    {
      name: 'nothing-imports-cli',
      severity: 'error',
      comment: 'cli/ is the entry point: it composes everything and nothing in src/ imports it.',
      from: { path: '^src/', pathNot: '^src/cli/' },
      to: { path: '^src/cli/' },
    },
    {
      name: 'only-cli-imports-node',
      severity: 'error',
      comment:
        'node.ts is the composition root: only the CLI composes it. A layer that needs the node gets ' +
        'a narrow view passed in (the HTTP port: stats()), not the node.',
      from: { path: '^src/', pathNot: '^src/cli/' },
      to: { path: '^src/node[.]ts$' },
    },
    {
      name: 'only-composition-loads-keys',
      severity: 'error',
      comment:
        'keys.ts reads and writes key files at start-up: composition-time I/O, used by node.ts and ' +
        'the CLI only; the layers receive a KeyObject.',
      from: { path: '^src/', pathNot: '^src/(cli/|node[.]ts$)' },
      to: { path: '^src/keys[.]ts$' },
    },
    {
      name: 'src-not-to-test-or-bench',
      severity: 'error',
      comment: 'Shipped code never imports tests, test fixtures or benchmarks.',
      from: { path: '^src/' },
      to: { path: '^(test|bench)/' },
    },
    {
      name: 'no-orphans',
      severity: 'error',
      comment:
        'A module in src/ that nothing imports and that imports nothing is dead code (entry points ' +
        'import something, so they are not orphans).',
      from: { orphan: true, path: '^src/', pathNot: '\.d\.ts$' },
      to: {},
    },
  ],
  options: {
    // Cruise only the project's own files; packages are leaves.
    doNotFollow: { path: '(^|/)node_modules/' },
    // The code imports './x.js' for './x.ts' (NodeNext): resolve through tsconfig.json as tsc does.
    tsConfig: { fileName: 'tsconfig.json' },
    // `import type` counts: a type-only import still ties the layers (and can close a cycle).
    tsPreCompilationDeps: true,
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types', 'typings'],
    },
    skipAnalysisNotInRules: true,
  },
};
