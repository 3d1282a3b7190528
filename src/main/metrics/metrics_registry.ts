/**
 * Main thread: a small Prometheus registry (counters, gauges, histograms with labels) that renders
 * the text exposition format, line for line as the Prometheus client for Node renders it. The
 * library records metrics whether or not anyone scrapes them, so recording must cost nothing to
 * import: no Prometheus client library in every user's module graph.
 *
 * @module
 */

/** Label values by label name. */
export type Labels = Record<string, string>;

/** The text exposition format's content type (version 0.0.4), as Prometheus expects it. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function escapeHelp(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function formatValue(value: number): string {
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  if (Number.isNaN(value)) return "NaN";
  return String(value);
}

function formatLabels(names: readonly string[], values: readonly string[], first = ""): string {
  const parts = names.map((name, i) => `${name}="${escapeLabel(values[i]!)}"`);
  if (first) parts.unshift(first);
  return parts.length === 0 ? "" : `{${parts.join(",")}}`;
}

/** The series of one family, by label values. */
class Series<S> {
  readonly #name: string;
  readonly #labelNames: readonly string[];
  readonly #initial: () => S;
  readonly #byValues = new Map<string, { values: string[]; state: S }>();

  constructor(name: string, labelNames: readonly string[], initial: () => S) {
    this.#name = name;
    this.#labelNames = labelNames;
    this.#initial = initial;
  }

  state(labels: Labels): S {
    const values = this.#labelNames.map((name) => {
      const value = labels[name];
      if (value === undefined) throw new TypeError(`metric ${this.#name}: label ${name} missing`);
      return String(value);
    });
    const id = JSON.stringify(values);
    let entry = this.#byValues.get(id);
    if (!entry) this.#byValues.set(id, entry = { values, state: this.#initial() });
    return entry.state;
  }

  remove(labels: Labels): void {
    const wanted = Object.entries(labels);
    for (const [id, { values }] of this.#byValues) {
      if (wanted.every(([name, value]) => values[this.#labelNames.indexOf(name)] === value)) {
        this.#byValues.delete(id);
      }
    }
  }

  render(
    type: string,
    help: string,
    line: (values: readonly string[], state: S) => string[],
  ): string {
    const lines = [`# HELP ${this.#name} ${escapeHelp(help)}`, `# TYPE ${this.#name} ${type}`];
    if (this.#byValues.size === 0 && this.#labelNames.length === 0) this.state({});
    for (const { values, state } of this.#byValues.values()) lines.push(...line(values, state));
    return lines.join("\n") + "\n";
  }
}

/** What counters and gauges share: one number per series. */
export abstract class ScalarFamily {
  /** Metric name. */
  readonly name: string;
  /** Help text. */
  readonly help: string;
  /** Label names. */
  readonly labelNames: readonly string[];
  /** `"counter"` or `"gauge"`. */
  abstract readonly type: "counter" | "gauge";
  /**
   * The series, by label values.
   *
   * @ignore
   */
  protected readonly series: Series<{ value: number }>;

  /** Use {@linkcode MetricsRegistry.counter} or {@linkcode MetricsRegistry.gauge}. */
  constructor(name: string, help: string, labelNames: readonly string[]) {
    this.name = name;
    this.help = help;
    this.labelNames = labelNames;
    this.series = new Series(name, labelNames, () => ({ value: 0 }));
  }
  /** Deletes every series whose labels include all of `labels`. */
  remove(labels: Labels): void {
    this.series.remove(labels);
  }
  /** The family in the text format. */
  text(): string {
    return this.series.render(this.type, this.help, (values, state) => [
      `${this.name}${formatLabels(this.labelNames, values)} ${formatValue(state.value)}`,
    ]);
  }
}

/** A counter family: only goes up. */
export class CounterFamily extends ScalarFamily {
  /** Always `"counter"`. */
  readonly type = "counter" as const;
  /** Adds `by` (default 1) to the series of `labels`. */
  inc(labels: Labels = {}, by = 1): void {
    if (!(by >= 0)) throw new RangeError(`metric ${this.name}: a counter cannot go down`);
    this.series.state(labels).value += by;
  }
}

/** A gauge family: any value. */
export class GaugeFamily extends ScalarFamily {
  /** Always `"gauge"`. */
  readonly type = "gauge" as const;
  /** Sets the series of `labels`. */
  set(labels: Labels, value: number): void {
    this.series.state(labels).value = value;
  }
}

interface HistogramState {
  counts: number[];
  sum: number;
  count: number;
}

/** A histogram family with fixed bucket bounds. */
export class HistogramFamily {
  /** Metric name. */
  readonly name: string;
  /** Help text. */
  readonly help: string;
  /** Label names. */
  readonly labelNames: readonly string[];
  /** Always `"histogram"`. */
  readonly type = "histogram" as const;
  /** Upper bounds of the buckets, ascending (`+Inf` is implied). */
  readonly buckets: readonly number[];
  readonly #series: Series<HistogramState>;

  /** Use {@linkcode MetricsRegistry.histogram}. */
  constructor(name: string, help: string, labelNames: readonly string[], buckets: number[]) {
    this.name = name;
    this.help = help;
    this.labelNames = labelNames;
    this.buckets = [...buckets].sort((a, b) => a - b);
    this.#series = new Series(name, labelNames, () => ({
      counts: this.buckets.map(() => 0),
      sum: 0,
      count: 0,
    }));
  }
  /** Records one observation in the series of `labels`. */
  observe(labels: Labels, value: number): void {
    const state = this.#series.state(labels);
    const i = this.buckets.findIndex((bound) => value <= bound);
    if (i >= 0) state.counts[i]!++;
    state.sum += value;
    state.count++;
  }
  /**
   * Adds already-bucketed observations: per-bucket counts (not cumulative) for each bound, then one
   * more for values above the last bound, as a worker reports them.
   */
  merge(labels: Labels, counts: readonly number[], sum: number): void {
    const state = this.#series.state(labels);
    let total = 0;
    counts.forEach((n, i) => {
      if (i < state.counts.length) state.counts[i]! += n;
      total += n;
    });
    state.sum += sum;
    state.count += total;
  }
  /** Deletes every series whose labels include all of `labels`. */
  remove(labels: Labels): void {
    this.#series.remove(labels);
  }
  /** The family in the text format. */
  text(): string {
    return this.#series.render(this.type, this.help, (values, state) => {
      const lines: string[] = [];
      let cumulative = 0;
      this.buckets.forEach((bound, i) => {
        cumulative += state.counts[i]!;
        const le = `le="${formatValue(bound)}"`;
        lines.push(`${this.name}_bucket${formatLabels(this.labelNames, values, le)} ${cumulative}`);
      });
      lines.push(
        `${this.name}_bucket${formatLabels(this.labelNames, values, 'le="+Inf"')} ${state.count}`,
        `${this.name}_sum${formatLabels(this.labelNames, values)} ${formatValue(state.sum)}`,
        `${this.name}_count${formatLabels(this.labelNames, values)} ${state.count}`,
      );
      return lines;
    });
  }
}

/**
 * A Prometheus registry: the metrics of a {@linkcode ClusterCache} and of the
 * {@linkcode Controller}s given it, rendered for a `/metrics` endpoint. To serve it beside a
 * Prometheus client library's registry, concatenate the two texts.
 *
 * @example Serving the cache's metrics beside your own
 * ```ts
 * import assert from "node:assert/strict";
 * import { MetricsRegistry } from "@fleetkit/clustercache/metrics";
 *
 * const registry = new MetricsRegistry(); // a ClusterCache has one: cache.metrics.registry
 * registry.counter("my_operator_reconciles_total", "Reconciles.", ["result"]).inc({ result: "ok" });
 * const text = await registry.metrics();
 * assert.match(text, /my_operator_reconciles_total\{result="ok"\} 1/);
 * ```
 */
export class MetricsRegistry {
  /** The `Content-Type` of {@linkcode MetricsRegistry.metrics}'s text. */
  readonly contentType: string = PROMETHEUS_CONTENT_TYPE;
  readonly #families = new Map<string, CounterFamily | GaugeFamily | HistogramFamily>();
  readonly #collectors = new Set<() => void>();

  #family<F extends CounterFamily | GaugeFamily | HistogramFamily>(
    name: string,
    create: () => F,
    type: F["type"],
  ): F {
    const existing = this.#families.get(name);
    if (existing) {
      if (existing.type !== type) {
        throw new TypeError(`metric ${name} is already registered as a ${existing.type}`);
      }
      return existing as F;
    }
    const family = create();
    this.#families.set(name, family);
    return family;
  }

  /**
   * The counter named `name`, created on first use (later calls return the same family).
   *
   * @param name Metric name.
   * @param help Its help text.
   * @param labelNames Its labels.
   */
  counter(name: string, help: string, labelNames: readonly string[] = []): CounterFamily {
    return this.#family(name, () => new CounterFamily(name, help, labelNames), "counter");
  }

  /** The gauge named `name`, created on first use. See {@linkcode MetricsRegistry.counter}. */
  gauge(name: string, help: string, labelNames: readonly string[] = []): GaugeFamily {
    return this.#family(name, () => new GaugeFamily(name, help, labelNames), "gauge");
  }

  /**
   * The histogram named `name`, created on first use with these bucket bounds.
   * See {@linkcode MetricsRegistry.counter}.
   */
  histogram(
    name: string,
    help: string,
    labelNames: readonly string[],
    buckets: number[],
  ): HistogramFamily {
    return this.#family(
      name,
      () => new HistogramFamily(name, help, labelNames, buckets),
      "histogram",
    );
  }

  /**
   * Runs `collect` before every render, to set gauges that are read rather than recorded.
   *
   * @returns Unregisters it.
   */
  onCollect(collect: () => void): () => void {
    this.#collectors.add(collect);
    return () => this.#collectors.delete(collect);
  }

  /** Every metric in the Prometheus text exposition format. */
  metrics(): Promise<string> {
    for (const collect of this.#collectors) collect();
    return Promise.resolve([...this.#families.values()].map((f) => f.text()).join("\n"));
  }
}
