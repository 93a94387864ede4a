// host:port strings as used in the cluster config ("127.0.0.1:7001", "[::1]:7001", "node-a:7001").
import { TransportConfigError } from './errors.js';

export interface HostPort {
  host: string;
  port: number;
}

/** Parse `value`, naming `field` in the error; port 0 (ephemeral) only when `allowEphemeral`. */
export function parseHostPort(value: unknown, field: string, allowEphemeral: boolean): HostPort {
  if (typeof value !== 'string') throw new TransportConfigError(field, value, 'expected a "host:port" string');
  const colon = value.lastIndexOf(':');
  if (colon <= 0) throw new TransportConfigError(field, value, 'expected "host:port", e.g. "127.0.0.1:7001"');
  const host = value.slice(0, colon);
  if (host.startsWith('[')) {
    if (!host.endsWith(']') || host.length < 3) throw new TransportConfigError(field, value, 'unbalanced brackets around an IPv6 host');
  } else if (host.includes(':')) {
    throw new TransportConfigError(field, value, 'IPv6 hosts must be bracketed, e.g. "[::1]:7001"');
  }
  const portText = value.slice(colon + 1);
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (!(port >= (allowEphemeral ? 0 : 1) && port <= 65535)) {
    throw new TransportConfigError(field, value, `port must be an integer in ${allowEphemeral ? 0 : 1}..65535`);
  }
  return { host, port };
}

export function formatHostPort({ host, port }: HostPort): string {
  return `${host}:${port}`;
}
