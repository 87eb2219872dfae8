/**
 * The one configuration schema: every key with its type, default and meaning. Keys are dotted
 * paths (`limits.maxConnections`); the environment spells them `MPUSH_LIMITS_MAX_CONNECTIONS`
 * and the command line `--limits.maxConnections=…`.
 */
export type KeyType = 'int' | 'string' | 'bool';

export interface KeySpec {
  type: KeyType;
  default: number | string | boolean;
  doc: string;
  min?: number;
  max?: number;
  /** For strings: the only values allowed. */
  enum?: readonly string[];
}

function int(def: number, doc: string, min = 0, max = Number.MAX_SAFE_INTEGER): KeySpec & { type: 'int' } {
  return { type: 'int', default: def, doc, min, max };
}
function str(def: string, doc: string): KeySpec & { type: 'string' } {
  return { type: 'string', default: def, doc };
}
function choice(def: string, values: readonly string[], doc: string): KeySpec & { type: 'string' } {
  return { type: 'string', default: def, doc, enum: values };
}
function bool(def: boolean, doc: string): KeySpec & { type: 'bool' } {
  return { type: 'bool', default: def, doc };
}

const KiB = 1024;
const MiB = 1024 * KiB;

export const schema = {
  node: {
    id: str('', 'Node id in the cluster; empty means host:port of the connection server.'),
    dataDir: str('./data', 'Directory for state kept across restarts (the generated RSA key pair).'),
    publicHost: str(
      '',
      "Host devices reach this node's TCP port at, as GET /alloc lists it; empty: gateway.advertiseHost, else server.host (127.0.0.1 when bound to 0.0.0.0).",
    ),
    publicPort: int(
      0,
      "Port devices reach this node's TCP port at (behind NAT or a load balancer), as GET /alloc lists it; 0: the port the server listens on.",
      0,
      65535,
    ),
    publicTlsPort: int(
      0,
      "Port devices reach this node's TLS port at, as GET /alloc?tls=1 lists it (on node.publicHost); 0: the port tls.port listens on.",
      0,
      65535,
    ),
    maxSemiSpaceMb: int(
      0,
      "V8's --max-semi-space-size (MB) `mpush start` runs the node with (relaunching itself), unless node's own flags or NODE_OPTIONS set one. 0: V8's default (16), measured the fastest here: larger semi-spaces scavenge less often but not less in all, pause longer and cost RSS per connection.",
      0,
      1024,
    ),
  },
  server: {
    enabled: bool(
      true,
      "Accept devices on the plain TCP port (MPush's own SDKs speak only this); false closes it, devices then use tls.port.",
    ),
    host: str('0.0.0.0', 'Address the TCP connection server (and tls.port) binds.'),
    port: int(3000, 'TCP port for devices (MPush binary protocol); 0 picks a free port.', 0, 65535),
    backlog: int(
      4096,
      "Listen backlog of the device, gateway and HTTP ports (the kernel caps it at somaxconn); Node's 511 overflows under connection storms.",
      1,
    ),
  },
  http: {
    enabled: bool(true, 'Open the plain HTTP port; false closes it (https.port serves the same over TLS).'),
    host: str(
      '0.0.0.0',
      'Address the HTTP port (and https.port) binds (WebSocket, /public-key, health, API).',
    ),
    port: int(8080, 'HTTP port; 0 picks a free port.', 0, 65535),
    wsPath: str('/', 'Path of the WebSocket endpoint on the HTTP port.'),
    wsEnabled: bool(true, 'Accept WebSocket devices on the HTTP port (and on https.port).'),
  },
  tls: {
    enabled: bool(
      false,
      'Devices over TLS on tls.port, the MPush binary protocol inside; needs tls.cert and tls.key (or mpush start --tls-self-signed).',
    ),
    port: int(3443, 'TLS port for devices, bound on server.host; 0 picks a free port.', 0, 65535),
    cert: str(
      '',
      'PEM file of the certificate (chain) of every TLS port (tls.port, https.port, gateway.tls); re-read on SIGHUP, open connections kept.',
    ),
    key: str('', 'PEM file of the private key of tls.cert; re-read on SIGHUP.'),
    ca: str(
      '',
      "PEM file of the CAs that sign push clients' certificates: when set, the TLS gateway (gateway.tls) requires a client certificate signed by one of them; re-read on SIGHUP.",
    ),
  },
  https: {
    enabled: bool(
      false,
      'HTTPS on https.port, serving all the HTTP port serves (WSS devices, API, /public-key, /health, /alloc); needs tls.cert and tls.key.',
    ),
    port: int(8443, 'HTTPS port, bound on http.host; 0 picks a free port.', 0, 65535),
  },
  gateway: {
    host: str(
      '0.0.0.0',
      'Address the gateway (push clients, other nodes) binds; keep it on a private network.',
    ),
    port: int(3001, 'Gateway TCP port (MPush gateway protocol); 0 picks a free port.', 0, 65535),
    advertiseHost: str(
      '',
      'Host other nodes and push clients reach this gateway at; empty means 127.0.0.1 when bound to 0.0.0.0.',
    ),
    tls: bool(
      false,
      'The gateway speaks TLS (tls.cert, tls.key; with tls.ca, client certificates required); push clients then connect with TLS.',
    ),
    secret: str(
      '',
      "When set, push clients must prove they hold it (HMAC over a nonce the gateway sends on each connection, in GATEWAY_HELLO's reply) before the gateway answers them.",
    ),
    authTimeoutMs: int(
      10_000,
      'With gateway.secret set: a connection that has not authenticated this long after it opened is closed.',
      100,
    ),
    maxConnections: int(
      10_000,
      'Push-client connections the gateway holds at once, those still in their TLS handshake or login included; the next is closed at accept.',
      1,
    ),
    maxPacketSize: int(
      1 * MiB,
      'Largest gateway packet body; an oversize push is answered with an ERROR, not a close.',
      1024,
    ),
    maxOutboundBytes: int(
      8 * MiB,
      'Replies queued to one push client before the gateway drops it as a slow reader.',
      1024,
    ),
    drainTimeoutMs: int(
      30_000,
      'Time a backpressured push client connection may take to drain before the gateway drops it.',
      100,
    ),
    maxRouteQueryUsers: int(
      10_000,
      "Most user ids in one route query (GATEWAY_ROUTE_QUERY); a larger query is refused. PushSender's maxRouteQueryUsers must not exceed it.",
      1,
    ),
  },
  push: {
    defaultTimeoutMs: int(3000, 'Timeout of a push that names none (or names 0: mpush-wire §12).', 1),
    ackTickMs: int(10, 'Resolution of ack timeouts.', 1, 1000),
    broadcastRate: int(
      0,
      'Default broadcast rate, devices per second; 0 means as fast as the node can write.',
      0,
    ),
    broadcastSlice: int(
      2000,
      'Devices a broadcast writes per turn of the event loop before yielding to I/O.',
      1,
    ),
    taskRetentionMs: int(600_000, 'How long a finished broadcast task stays queryable.', 0),
    tagMatch: choice(
      'mpush',
      ['mpush', 'exact'],
      "Broadcast tag matching: 'mpush' (a tag matches when the device's bind tags contain it as a substring, as MPush does) or 'exact' (whole comma-separated tags).",
    ),
    maxRedirects: int(3, 'Route changes (gateway ERROR 3) a push request follows before it fails.', 0, 100),
  },
  inbox: {
    defaultTtlSeconds: int(
      604_800,
      'How long a push with store: true and no ttl waits in the inbox for a device (7 days).',
      1,
    ),
    maxMessagesPerUser: int(
      1000,
      "Messages one user's inbox keeps; past it the oldest is dropped (counted).",
      1,
    ),
    maxMessageBytes: int(
      64 * KiB,
      'Largest content a push may keep in the inbox; a bigger one is pushed live only (the result says why).',
      1,
    ),
    receiptTtlSeconds: int(
      691_200,
      'How long a stored message receipt (GET /api/messages/:id) stays queryable (8 days).',
      1,
    ),
    storeTimeoutMs: int(
      2000,
      'Longest a push reply waits for the inbox store; past it the result says the store failed.',
      10,
    ),
    maxConcurrentReplays: int(
      100,
      'Binds whose stored messages are read and written at once; more (a mass reconnect) wait their turn, their live pushes held behind the replay.',
      1,
    ),
    replayAttempts: int(
      3,
      "Reads of a binding device's stored messages tried before its replay is given up (a timed-out read in a burst of binds goes to the back of the queue); they stay stored for its next bind.",
      1,
      100,
    ),
    memoryMaxUsers: int(
      1_000_000,
      'Inboxes (and receipts) the in-memory store keeps; past it a new inbox is refused and the oldest receipt goes (Redis keeps its own).',
      1,
    ),
  },
  webhooks: {
    urls: str(
      '',
      'Comma-separated http(s) URLs every webhook event is POSTed to (user.online, user.offline, message.stored, message.delivered, message.acked, message.expired); empty: no webhooks.',
    ),
    secret: str(
      '',
      'Key of the X-Mpush-Signature header (sha256=<hex HMAC-SHA256 of the body>); required when webhooks.urls is set.',
    ),
    maxAttempts: int(
      5,
      'Attempts per event and URL (the first included); past it the event is dropped (counted).',
      1,
      100,
    ),
    queueSize: int(
      10_000,
      'Deliveries (one per event and URL) held at once, waiting, in flight or waiting to retry; a new event past it is dropped (counted).',
      1,
    ),
    concurrency: int(4, 'Requests in flight at once, over all URLs.', 1, 1000),
    timeoutMs: int(
      5000,
      'Longest one HTTP attempt may take, response body included; past it the attempt failed.',
      10,
    ),
    retryMinMs: int(500, 'Backoff before the first retry; doubled each attempt, with jitter.', 1),
    retryMaxMs: int(60_000, 'Longest backoff between two attempts.', 1),
    stopTimeoutMs: int(
      1000,
      'On node stop, how long the deliveries still held may take; what is left then is abandoned (counted).',
      0,
    ),
  },
  alloc: {
    maxServers: int(
      10,
      "Most device addresses GET /alloc (MPush's allotServer) lists, least loaded first.",
      1,
      1000,
    ),
  },
  httpProxy: {
    enabled: bool(
      false,
      "Serve MPush's HTTP_PROXY command: devices send HTTP requests over their long connection to the upstreams named in httpProxy.upstreams. Off: every request is answered 403.",
    ),
    upstreams: str(
      '',
      'The only hosts a device may call, each mapped to a base URL (like MPush dns-mapping): name=http://127.0.0.1:9000,other=https://api.example.com/v1. A request for http://name/path goes to <base URL>/path; any other host is refused with 403.',
    ),
    maxRequestBytes: int(
      64 * KiB,
      'Largest request body a device may send through the proxy; a bigger one is answered 413.',
      0,
    ),
    maxResponseBytes: int(
      512 * KiB,
      'Largest upstream response body; a bigger one is answered 502 (MPush allows 5 MB). It travels in one packet, so it must stay 64 KiB below limits.maxOutboundBytes.',
      1,
    ),
    timeoutMs: int(
      10_000,
      "Longest one proxied request may take, response body included: past it 408 (504 if the upstream was never reached). A device's readTimeout header can only lower it.",
      1,
      600_000,
    ),
    maxConcurrentPerConnection: int(
      8,
      'Proxied requests one connection may have in flight; one more is answered 429.',
      1,
    ),
    maxConcurrent: int(
      1024,
      'Proxied requests this node has in flight at once, over all connections; one more is answered 503.',
      1,
    ),
    maxSocketsPerUpstream: int(
      64,
      'Keep-alive sockets the proxy opens to one upstream origin (scheme, host, port) at most; more requests wait for one.',
      1,
    ),
    idleSocketMs: int(
      4000,
      "How long a pooled upstream socket may stay idle before it is closed; keep it below the upstreams' keep-alive timeout (Node's is 5 s).",
      1,
    ),
    requireBind: bool(
      false,
      'Refuse (403) requests from a connection that has not bound a user; MPush asks only for a handshake.',
    ),
  },
  api: {
    secret: str('', 'Bearer secret for the HTTP API; required whenever http.host is not a loopback address.'),
    maxBodyBytes: int(1 * MiB, 'Largest HTTP API request body.', 1024),
  },
  metrics: {
    public: bool(
      false,
      'Serve GET /metrics to any address without the API bearer secret (it is always open to loopback).',
    ),
  },
  console: {
    recentDisconnects: int(
      200,
      'Disconnects (time, reason, user, transport) the admin web console lists, newest first; past it the oldest is forgotten.',
      0,
      10_000,
    ),
  },
  admin: {
    enabled: bool(
      true,
      "MPush's telnet console on admin.port (help, count, route, push, conf, zk, shutdown); on loopback unless admin.host says otherwise.",
    ),
    host: str(
      '127.0.0.1',
      'Address the telnet console binds; it has no login, so keep it on loopback or a private network.',
    ),
    port: int(3002, "Telnet console port (MPush's 3002); 0 picks a free port.", 0, 65535),
    allowShutdown: bool(
      false,
      "Let the console's shutdown command stop the node; when false it answers with a refusal.",
    ),
    maxLineBytes: int(
      4096,
      'Longest command line (bytes, before its newline); a longer one closes the console connection with a message.',
      16,
      1 * MiB,
    ),
    maxConnections: int(8, 'Console connections held at once; one more is told so and closed.', 1, 10_000),
    idleTimeoutMs: int(
      300_000,
      'A console connection with no traffic this long is closed (also the longest its replies may wait to drain).',
      100,
    ),
    maxOutboundBytes: int(
      1 * MiB,
      'Replies queued to one console connection that is not reading them before it is closed.',
      1024,
    ),
  },
  cluster: {
    redis: str(
      '',
      'Redis for a cluster: redis://host:6379 (single), redis-sentinel://host:26379,host2:26379/<master name>, or redis-cluster://host:7000,host:7001; empty: one machine with in-memory stores.',
    ),
    prefix: str('mp:', 'Key prefix in Redis (MPush uses mp:, so its tools read the routes).'),
    registryTtlMs: int(10_000, 'A node missing its registry refresh this long is dead.', 1000),
    registryRefreshMs: int(3_000, 'How often a node refreshes its registry entry.', 100),
    bindWaitMs: int(
      3_000,
      "Longest a BIND's OK waits for the route to be written to Redis (so that a device moving on at once is the newer binding on its next node). Past it, as in a Redis outage, the OK goes anyway: the node keeps the binding and re-publishes it when Redis is back. 0: answer at once.",
      0,
      60_000,
    ),
    workers: int(
      1,
      'Worker processes on this machine (node:cluster), each a cluster node sharing the public ports; more than 1 needs cluster.redis.',
      1,
      64,
    ),
    zookeeper: str(
      '',
      "ZooKeeper servers (host:2181[,host:2182]) to register this node's gateway, device and WebSocket servers in, in MPush's layout, so MPush's own PushClient finds it; needs cluster.redis. Empty: no ZooKeeper.",
    ),
    zookeeperNamespace: str('mpush', "Root folder of the registration (MPush's zk.namespace)."),
    zookeeperDigest: str(
      'mpush',
      "Digest credentials of the registration (MPush's zk.digest); the nodes get the creator-all ACL of this user.",
    ),
    zookeeperSessionTimeoutMs: int(
      10_000,
      'ZooKeeper session timeout: a node cut off this long loses its registration (it registers again on reconnect).',
      1000,
      600_000,
    ),
  },
  security: {
    privateKey: str(
      '',
      'RSA private key: PKCS#8 base64 (MPush non-CRT keys too) or PEM. Empty: generate and keep one in node.dataDir.',
    ),
    publicKey: str(
      '',
      'RSA public key (base64 X.509 SPKI or PEM), needed only to load an MPush non-CRT private key whose exponent is not 65537.',
    ),
  },
  heartbeat: {
    minMs: int(180_000, 'Smallest heartbeat the server grants (MPush min-heartbeat).', 1),
    maxMs: int(180_000, 'Largest heartbeat the server grants (MPush max-heartbeat).', 1),
    maxTimeouts: int(
      2,
      'Read timeouts (heartbeat + 1 s with nothing read) tolerated; the next one closes.',
      0,
      100,
    ),
    graceMs: int(1000, 'Added to the heartbeat before a read timeout counts.', 0),
    tickMs: int(
      1000,
      'Resolution of the shared timer wheel that checks heartbeats and deadlines.',
      1,
      60_000,
    ),
  },
  session: {
    expireMs: int(86_400_000, 'Lifetime of a fast-connect session (MPush session-expired-time).', 1000),
    maxEntries: int(
      1_000_000,
      'Most sessions the in-memory store keeps; past it the oldest go first (Redis keeps its own).',
      1,
    ),
  },
  limits: {
    maxConnections: int(100_000, 'Connections (TCP + WebSocket) one node holds; the next is refused.', 1),
    maxPacketSize: int(10 * KiB, 'Largest packet body a device may send (MPush max-packet-size).', 64),
    maxInflatedSize: int(1 * MiB, 'Largest size a compressed body may inflate to.', 1024),
    handshakeTimeoutMs: int(10_000, 'Time a new connection has to complete its handshake.', 100),
    handshakesPerSecond: int(10_000, 'Handshakes (full and fast) accepted per second, token bucket rate.', 1),
    handshakeBurst: int(20_000, 'Token bucket size for handshakes.', 1),
    maxOutboundBytes: int(
      1 * MiB,
      'Bytes queued to one device before it is disconnected as a slow reader.',
      1024,
    ),
    drainTimeoutMs: int(
      30_000,
      'Time a backpressured connection may take to drain before it is closed.',
      100,
    ),
    wsMaxPayload: int(64 * KiB, 'Largest WebSocket message accepted.', 256),
    fastConnectQueue: int(
      16,
      'Packets a device may send while its fast connect is being looked up; one more closes it.',
      1,
    ),
  },
  compress: {
    thresholdBytes: int(
      10 * KiB,
      'Bodies longer than this are zlib-compressed before encryption (MPush compress-threshold).',
      0,
    ),
  },
  auth: {
    bindSecret: str('', 'When set, a bind must carry a valid signed token in its data field (HMAC-SHA256).'),
  },
  log: {
    level: choice(
      'info',
      ['error', 'warn', 'info', 'debug'],
      'Least severe level logged (JSON lines on stderr); debug adds connections, binds, kicks and bad input.',
    ),
  },
} as const satisfies Record<string, Record<string, KeySpec>>;

type Schema = typeof schema;
type ValueOf<S> = S extends { type: 'int' } ? number : S extends { type: 'bool' } ? boolean : string;

/** The validated configuration. */
export type Config = {
  -readonly [G in keyof Schema]: { -readonly [K in keyof Schema[G]]: ValueOf<Schema[G][K]> };
};
