/**
 * Prometheus metrics shared by the daemon's routes and the core it calls
 * (signs, registrations, rejections, queue depth). One registry per daemon.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class Metrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'biostore_http_requests_total',
    help: 'HTTP requests by route, method and status',
    labelNames: ['route', 'method', 'status'] as const,
    registers: [this.registry],
  });
  readonly latency = new Histogram({
    name: 'biostore_http_request_duration_seconds',
    help: 'HTTP request latency by route',
    labelNames: ['route', 'method'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly signs = new Counter({ name: 'biostore_signs_total', help: 'presigned uploads handed out', registers: [this.registry] });
  readonly uploadsRegistered = new Counter({
    name: 'biostore_uploads_registered_total',
    help: 'uploads checked and registered',
    registers: [this.registry],
  });
  readonly uploadsRejected = new Counter({
    name: 'biostore_uploads_rejected_total',
    help: 'uploads rejected (not what was signed, or not an image)',
    registers: [this.registry],
  });
  readonly queueDepth = new Gauge({
    name: 'biostore_queue_depth',
    help: 'files waiting for a worker, by state',
    labelNames: ['state'] as const,
    registers: [this.registry],
  });

  constructor(defaults = true) {
    if (defaults) collectDefaultMetrics({ register: this.registry, prefix: 'biostore_' });
  }
}
