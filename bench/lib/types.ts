/** The shape of bench/results/latest.json. */
import type { LeasedResult } from "./leased";
import type { ProfileResult } from "./profile";
import type { SheddingResult } from "./shedding";
import type { WrkResult } from "./wrk";

export type CaseId =
  | "origin"
  | "passthrough"
  | "passthroughDo"
  | "meteringFloor"
  | "meteringFloorDo"
  | "gateway"
  | "nginx";

export interface CpuSample {
  /** CPU of the case's server process tree during the run, ms */
  serverMs: number;
  serverMsPer1k: number;
  /** serverMs split by command name (e.g. node = Miniflare host + Postgres bridge, workerd) */
  serverMsByCommand: Record<string, number>;
  /** CPU of the origin during the run, ms (for case origin: the same as serverMs) */
  originMs: number;
  /** CPU of wrk (the load generator) during the run, ms */
  wrkMs: number;
  /** Postgres server (postmaster tree) during the run, ms; null when not visible from here */
  postgresMs: number | null;
  /** Whole machine busy during the run, in cores (0..nproc) */
  machineBusyCores: number;
  /** Busy cores not accounted to the bench's own processes (other work on the machine: noise) */
  otherCores: number;
  /** gateway only: server tree CPU including the metering drain after wrk stopped */
  serverMsAfterDrain?: number;
  serverMsPer1kAfterDrain?: number;
  serverMsByCommandAfterDrain?: Record<string, number>;
  /** gateway only: Postgres server CPU including the metering drain */
  postgresMsAfterDrain?: number;
}

export interface RunResult {
  round: number;
  case: CaseId;
  connections: number;
  wrk: WrkResult;
  cpu: CpuSample;
  /** gateway and (b3) only: usage rows vs requests the origin received from it (cumulative) */
  drain?: {
    expected: number;
    rows: number;
    drainS: number;
    timedOut: boolean;
    /** requests proxied during this run (warm-up included) */
    proxied: number;
    /** queue messages (and events in them) the gateway sent meanwhile, drain included */
    queueMessages: number;
    queueEvents: number;
  };
}

export interface CaseSummary {
  case: CaseId;
  label: string;
  connections: number;
  rounds: number;
  rps: number;
  rpsMin: number;
  rpsMax: number;
  p50: number;
  p99: number;
  p999: number;
  errors: number;
  requests: number;
  cpuMsPer1k: number;
  /** gateway: incl. the metering drain */
  cpuMsPer1kAfterDrain?: number;
  /** median CPU ms per 1k requests by command name (incl. the drain for the gateway) */
  cpuMsPer1kByCommand: Record<string, number>;
  otherCores: number;
}

export interface CorrectnessResult {
  name: string;
  description: string;
  limit: number;
  durationS: number;
  connections: number;
  /** responses wrk completed */
  sent: number;
  statuses: Record<string, number>;
  /** requests the gateway let through: what the origin received on this run's path */
  admitted: number;
  /** 2xx responses wrk completed before its -d ended */
  clientSaw2xx: number;
  /** admitted − clientSaw2xx: admitted responses still on their way when wrk stopped */
  inFlightAtEnd: number;
  rejected429: number;
  other: number;
  socketErrors: number;
  usageRows: number;
  drainS: number;
  /** first and last admitted request (usage row ts), ms after wrk started */
  admittedAfterStartMs: [number, number];
  /** the slowest admitted request as the gateway measured it (usage row latency_ms) */
  slowestAdmittedMs: number;
  /** the 10 slowest admitted requests: arrival (ms after wrk started) and gateway latency */
  slowestAdmitted: Array<{ atMs: number; latencyMs: number }>;
  /** wrk's slowest response of the run */
  wrkMaxLatencyMs: number;
  admittedEqualsLimit: boolean;
  rowsEqualAdmitted: boolean;
  pass: boolean;
}

export interface LagStats {
  events: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  resolutionMs: number;
}

/** The usage-queue consumer's batches, as Miniflare's broker timed them (one batch at a time). */
export interface ConsumerStats {
  batches: number;
  messages: number;
  /** messages not acked (retried) */
  retried: number;
  medianBatchSize: number;
  /** wall time of the consumer's queue() handler per batch */
  handlerP50Ms: number;
  handlerP99Ms: number;
  /** medianBatchSize / handlerP50: the ceiling with one batch in flight */
  ceilingEventsPerS: number;
  /** usage events per queue message in these batches */
  eventsPerMessage: number;
  /** events ÷ the total time the handler ran: what the consumer sustains while busy */
  busyEventsPerS: number;
}

export interface MeteringResult {
  /** Real requests through the gateway (the c32 runs of every round). */
  underLoad: {
    requests: number;
    rows: number;
    offeredEventsPerS: number;
    lag: LagStats;
    /** median time from wrk's end to the last row visible, s */
    drainS: number;
    postgresCpuMsPer1kEvents: number | null;
    consumer: ConsumerStats;
    /** queue messages the gateway sent during all its runs, and the requests it proxied meanwhile */
    queueMessages: number;
    queueProxied: number;
    messagesPerRequest: number;
  };
  /** Cases (b3) and (b4) over every round: usage rows = requests the origin received from each (absent in results from before them). */
  floors?: Array<{ case: CaseId; requests: number; rows: number }>;
  /** K synthetic events pushed into the usage queue at once (bench/producer-worker.js). */
  synthetic: {
    events: number;
    rows: number;
    produceS: number;
    /** K / (last row visible − first send) */
    eventsPerS: number;
    /** rows / (last row visible − first row visible): the consumer alone */
    consumerEventsPerS: number;
    /** from the first row visible to the last, s */
    firstToLastRowS: number;
    /** queue messages the K events were packed into */
    messages: number;
    lag: LagStats;
    timedOut: boolean;
    consumer: ConsumerStats;
    gatewayCpuMsPer1kEvents: number;
    postgresCpuMsPer1kEvents: number | null;
  } | null;
  /** The usage queue refusing sends for a while under load, then recovering. */
  fault: FaultResult | null;
}

export interface FaultResult {
  /** how long sends were refused, s */
  faultS: number;
  /** responses wrk completed */
  requests: number;
  /** requests the origin received */
  proxied: number;
  /** what the tenant object's ledger admitted (reconciliation) */
  admitted: number;
  rows: number;
  refusedSends: number;
  refusedEvents: number;
  queueMessages: number;
  /** from the queue's recovery to the last row, s */
  drainS: number;
  /** reconciliation rows with a difference */
  differences: number;
  pass: boolean;
}

export interface Ratios {
  gatewayOverPassthroughRps: number;
  /** gateway ÷ (b2): the cost of everything the gateway does besides its one object call (target ≥ 0.85). */
  gatewayOverPassthroughDoRps: number;
  gatewayOverPassthroughDoCpu: number;
  /** (b2) ÷ (b): what one object call per request costs the runtime. */
  passthroughDoOverPassthroughRps: number;
  /** (b3) ÷ (b): what the usage hand-off alone costs the runtime (the leased path's floor). */
  meteringFloorOverPassthroughRps?: number;
  meteringFloorOverPassthroughCpu?: number;
  /** (b4) ÷ (b2): the usage hand-off on top of one object call (the default mode's floor). */
  meteringFloorDoOverPassthroughDoRps?: number;
  /** gateway ÷ (b4): what the gateway's own work costs on top of both floors. */
  gatewayOverMeteringFloorDoRps?: number;
  gatewayOverPassthroughCpu: number;
  gatewayOverPassthroughCpuRequestPath: number;
  gatewayOverNginxRps: number;
  gatewayOverNginxCpu: number;
  passthroughOverNginxRps: number;
  addedP50MsOverDirect: number;
  addedP99MsOverDirect: number;
  addedP50MsOverDirectUnloaded: number | null;
  addedP99MsOverDirectUnloaded: number | null;
}

export interface BenchResults {
  version: 1;
  startedAt: string;
  finishedAt: string;
  wallTimeS: number;
  config: {
    rounds: number;
    durationS: number;
    warmupS: number;
    threads: number;
    connections: number;
    unloadedDurationS: number;
    limit: number;
    syntheticEvents: number;
    profileS: number;
    doStorage: string;
  };
  machine: Record<string, string>;
  labels: Record<CaseId, string>;
  runs: RunResult[];
  unloadedRuns: RunResult[];
  summary: CaseSummary[];
  unloaded: CaseSummary[];
  ratios: Ratios;
  profile: ProfileResult;
  correctness: CorrectnessResult[];
  metering: MeteringResult;
  /** The leased-tenant case (bench/lib/leased.ts); absent in results from before it. */
  leased?: LeasedResult;
  /** The fair-shedding scenario (bench/lib/shedding.ts); absent when skipped (BENCH_SHEDDING=0). */
  shedding?: SheddingResult;
}
