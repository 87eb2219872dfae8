import type { IncomingMessage, ServerResponse } from 'node:http';
import { Counter, collectDefaultMetrics, Gauge, type Histogram, Registry } from 'prom-client';
import type { RedisCommandStats } from '../cluster/redis-connection.js';
import type { Config } from '../config/index.js';
import { Disconnect } from '../protocol/index.js';
import type { PushMeter } from '../push/push-center.js';
import { LATENCY_BOUNDS_MS, type LatencyHistogram, type LatencySummary } from '../util/latency-histogram.js';
import { type BearerAuth, isLoopback } from './auth.js';
import type { NodeStats } from './node-view.js';

/** What the metrics read of their node: the counts of /api/stats, the push path's histograms, Redis's. */
export interface MetricsSources {
  /** Read once per scrape; every counter and gauge comes from it. */
  stats(): NodeStats;
  readonly latency: Pick<PushMeter, 'toWrite' | 'toAck' | 'ack'>;
  /** Undefined without Redis stores. */
  readonly redis: RedisCommandStats | undefined;
}

/** A metric's value, or its rows: label values in order, then the value. */
type Read = (s: NodeStats) => number | Iterable<readonly (string | number)[]>;

function labelsOf(names: readonly string[], row: readonly (string | number)[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (let i = 0; i < names.length; i++) labels[names[i]!] = String(row[i]);
  return labels;
}

/**
 * A histogram whose buckets a {@link LatencyHistogram} already counts, exposed as Prometheus's
 * `_bucket` / `_sum` / `_count` in seconds. prom-client's Histogram can only be fed by `observe`,
 * which allocates per call; its Registry takes any metric that answers `get()`.
 */
class BucketHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly source: () => LatencyHistogram | undefined,
  ) {}

  async get() {
    const h = this.source();
    const values: Array<{ metricName: string; labels: { le?: number | string }; value: number }> = [];
    let cumulative = 0;
    LATENCY_BOUNDS_MS.forEach((bound, i) => {
      cumulative += h?.counts[i] ?? 0;
      values.push({ metricName: `${this.name}_bucket`, labels: { le: bound / 1000 }, value: cumulative });
    });
    values.push({ metricName: `${this.name}_bucket`, labels: { le: '+Inf' }, value: h?.count ?? 0 });
    values.push({ metricName: `${this.name}_sum`, labels: {}, value: (h?.sumMs ?? 0) / 1000 });
    values.push({ metricName: `${this.name}_count`, labels: {}, value: h?.count ?? 0 });
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {}
}

/** Node.js's process metrics (CPU, memory, event-loop lag, GC): one set per process, not per node. */
let processRegistry: Registry | undefined;
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

/** True when GET /metrics needs no bearer secret for a request from `remoteAddress`. */
export function metricsOpenTo(config: Pick<Config, 'metrics'>, remoteAddress: string | undefined): boolean {
  return config.metrics.public || (remoteAddress !== undefined && isLoopback(remoteAddress));
}

/**
 * One node's Prometheus metrics (`mpush_*`) on a registry of its own (several nodes may share a
 * process), plus the process's. Nothing is counted twice: every counter is read at scrape time
 * from the `stats` objects the node already keeps, and no label carries a user or a connection.
 */
export class NodeMetrics {
  readonly registry = new Registry();
  private snapshot: NodeStats | undefined;

  constructor(private readonly sources: MetricsSources) {
    processMetrics();
    const closed = (s: NodeStats, name: string) => s.connection.closed[name] ?? 0;
    this.gauge('mpush_connections', 'Device connections open, by transport.', ['transport'], (s) =>
      Object.entries(s.connection.open),
    );
    this.counter(
      'mpush_connections_accepted_total',
      'Device connections accepted.',
      [],
      (s) => s.connection.accepted,
    );
    this.counter(
      'mpush_connections_refused_total',
      'Device connections refused at limits.maxConnections.',
      [],
      (s) => s.connection.refused,
    );
    this.gauge('mpush_online_users', 'Users bound on this node.', [], (s) => s.onlineUsers);
    this.gauge('mpush_bound_connections', 'Connections that bound a user.', [], (s) => s.boundConnections);
    this.counter('mpush_handshakes_total', 'Handshakes completed: full, or fast connect.', ['kind'], (s) => [
      ['full', s.connection.handshakes],
      ['fast', s.connection.fastConnects],
    ]);
    this.counter('mpush_handshakes_failed_total', 'Handshakes that failed, by reason.', ['reason'], (s) => [
      ['bad-handshake', closed(s, Disconnect.BAD_HANDSHAKE.name)],
      ['handshake-timeout', closed(s, Disconnect.HANDSHAKE_TIMEOUT.name)],
      ['handshake-rate', s.connection.handshakesThrottled],
      ['fast-connect-refused', s.connection.fastConnectsRefused],
    ]);
    this.counter('mpush_binds_total', 'Users bound.', [], (s) => s.connection.binds);
    this.counter(
      'mpush_binds_refused_total',
      'Binds refused (bind token).',
      [],
      (s) => s.connection.bindsRefused,
    );
    this.counter(
      'mpush_binds_unrouted_total',
      'Binds answered before their route was written to Redis (cluster.bindWaitMs passed, or the write failed).',
      [],
      (s) => s.connection.bindsUnrouted,
    );
    this.counter(
      'mpush_kicks_total',
      'Devices kicked by another of the same type.',
      [],
      (s) => s.connection.kicks,
    );
    const reasons = Object.values(Disconnect).map((r) => r.name);
    this.counter('mpush_disconnects_total', 'Device connections closed, by reason.', ['reason'], (s) => {
      const out = new Map<string, number>(reasons.map((r) => [r, 0]));
      for (const [r, n] of Object.entries(s.connection.closed)) out.set(r, n);
      return out;
    });
    this.counter(
      'mpush_protocol_errors_total',
      'Undecodable or refused device input.',
      [],
      (s) => s.connection.protocolErrors,
    );
    this.counter('mpush_pushes_total', 'Single-user pushes, by outcome.', ['outcome'], (s) => [
      ['success', s.push.success],
      ['failure', s.push.failure],
      ['offline', s.push.offline],
      ['timeout', s.push.timeout],
      ['redirect', s.push.redirect],
    ]);
    this.counter('mpush_acks_total', 'ACKs received from devices.', [], (s) => s.connection.acks);
    this.gauge('mpush_pending_acks', 'Pushes awaiting a device ACK.', [], (s) => s.pendingAcks);
    const latency = sources.latency;
    this.histogram('mpush_ack_latency_seconds', 'Push written → device ACK.', () => latency.ack);
    this.histogram(
      'mpush_push_write_latency_seconds',
      'Push received by the gateway → written to the device.',
      () => latency.toWrite,
    );
    this.histogram(
      'mpush_push_ack_latency_seconds',
      'Push received by the gateway → device ACK.',
      () => latency.toAck,
    );
    this.counter('mpush_broadcast_tasks_total', 'Broadcast tasks started.', [], (s) => s.push.broadcasts);
    this.counter('mpush_broadcast_deliveries_total', 'Broadcast deliveries, by state.', ['state'], (s) => [
      ['matched', s.broadcast.matched],
      ['sent', s.broadcast.sent],
      ['acked', s.broadcast.acked],
      ['failed', s.broadcast.failed],
    ]);
    this.counter(
      'mpush_slow_reader_drops_total',
      'Connections dropped for not reading: past the outbound byte bound, or not drained in time.',
      ['port', 'limit'],
      (s) => [
        ['device', 'outbound-bytes', closed(s, Disconnect.SLOW_READER.name)],
        ['device', 'drain-timeout', closed(s, Disconnect.DRAIN_TIMEOUT.name)],
        ['gateway', 'outbound-bytes', s.gateway.slowClients],
        ['gateway', 'drain-timeout', s.gateway.drainTimeouts],
      ],
    );
    this.gauge(
      'mpush_gateway_clients',
      'Push clients connected to the gateway.',
      [],
      (s) => s.gatewayClients,
    );
    this.counter('mpush_gateway_requests_total', 'Gateway pushes received, by kind.', ['kind'], (s) => [
      ['push', s.gateway.pushes],
      ['broadcast', s.gateway.broadcasts],
    ]);
    this.counter(
      'mpush_gateway_refused_total',
      'Gateway requests or clients refused, by reason.',
      ['reason'],
      (s) => [
        ['oversized', s.gateway.oversized],
        ['auth-failure', s.gateway.authFailures],
        ['auth-timeout', s.gateway.authTimeouts],
        ['max-connections', s.gateway.refused],
      ],
    );
    this.counter('mpush_inbox_messages_total', 'Durable inbox messages, by event.', ['event'], (s) => [
      ['stored', s.inbox.stored],
      ['replayed', s.inbox.replayed],
      ['dropped', s.inbox.dropped],
      ['expired', s.inbox.expired],
      ['too-large', s.inbox.tooLarge],
    ]);
    this.counter(
      'mpush_inbox_store_failures_total',
      'Inbox store operations failed.',
      [],
      (s) => s.inbox.storeFailures,
    );
    this.gauge('mpush_webhook_queue', 'Webhook deliveries held: waiting, in flight or to retry.', [], (s) =>
      s.webhooks ? s.webhooks.queued : 0,
    );
    this.counter('mpush_webhook_deliveries_total', 'Webhook deliveries, by result.', ['result'], (s) => {
      const w = s.webhooks;
      return [
        ['sent', w?.sent ?? 0],
        ['retried', w?.retried ?? 0],
        ['failed', w?.failed ?? 0],
        ['dropped', w?.dropped ?? 0],
      ];
    });
    this.counter(
      'mpush_http_proxy_requests_total',
      'HTTP_PROXY requests answered (refusals included), by status class.',
      ['status'],
      (s) => Object.entries(s.httpProxy?.answered ?? {}),
    );
    this.gauge(
      'mpush_http_proxy_in_flight',
      'HTTP_PROXY requests waiting for their upstream.',
      [],
      (s) => s.httpProxy?.inFlight ?? 0,
    );
    const redis = sources.redis;
    if (redis) {
      this.counter(
        'mpush_redis_commands_total',
        'Redis commands sent, by command.',
        ['command'],
        () => redis.calls,
      );
      this.counter(
        'mpush_redis_command_errors_total',
        'Redis commands failed (error reply, timeout, connection lost), by command.',
        ['command'],
        () => redis.errors,
      );
      this.histogram(
        'mpush_redis_command_duration_seconds',
        'Redis command sent → replied.',
        () => redis.latency,
      );
    }
  }

  /** The content type of {@link text}. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** The node's metrics and the process's, in Prometheus's text format. */
  async text(): Promise<string> {
    // Every collect() runs synchronously at the start of metrics(): they all see this one snapshot.
    this.snapshot = this.sources.stats();
    const [own, proc] = await Promise.all([this.registry.metrics(), processMetrics().metrics()]);
    return `${own}\n${proc}`;
  }

  /** Device ACK latency (push written → ACK) quantiles, estimated from the histogram's buckets. */
  ackLatencySummary(): LatencySummary {
    return this.sources.latency.ack.summary();
  }

  /**
   * GET /metrics: open to loopback (and to anyone with `metrics.public`), else behind the API's
   * bearer secret (throws its 401).
   */
  async serve(req: IncomingMessage, res: ServerResponse, config: Config, auth: BearerAuth): Promise<void> {
    if (!metricsOpenTo(config, req.socket.remoteAddress)) auth.check(req);
    const body = await this.text();
    res.writeHead(200, { 'content-type': this.contentType });
    res.end(body);
  }

  private read(): NodeStats {
    this.snapshot ??= this.sources.stats();
    return this.snapshot;
  }

  private counter(name: string, help: string, labelNames: readonly string[], read: Read): void {
    const metrics = this;
    new Counter({
      name,
      help,
      labelNames,
      registers: [this.registry],
      collect() {
        this.reset();
        const v = read(metrics.read());
        if (typeof v === 'number') return this.inc(v);
        for (const row of v) this.inc(labelsOf(labelNames, row), row[labelNames.length] as number);
      },
    });
  }

  private gauge(name: string, help: string, labelNames: readonly string[], read: Read): void {
    const metrics = this;
    new Gauge({
      name,
      help,
      labelNames,
      registers: [this.registry],
      collect() {
        const v = read(metrics.read());
        if (typeof v === 'number') return this.set(v);
        this.reset();
        for (const row of v) this.set(labelsOf(labelNames, row), row[labelNames.length] as number);
      },
    });
  }

  private histogram(name: string, help: string, source: () => LatencyHistogram): void {
    // The registry formats any metric with get(); its type names only prom-client's own classes.
    this.registry.registerMetric(new BucketHistogram(name, help, source) as unknown as Histogram);
  }
}
