import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import { BlockList, isIP, type LookupFunction } from "node:net";

/** Ranges no request made on a user's behalf may reach unless the operator allows them (docs/security.md). */
export const DEFAULT_DENIED_CIDRS = [
  "127.0.0.0/8", // loopback
  "::1/128",
  "169.254.0.0/16", // link-local, cloud metadata
  "fe80::/10",
  "0.0.0.0/8", // unspecified / "this network"
  "::/128",
  "224.0.0.0/4", // multicast
  "ff00::/8",
  "255.255.255.255/32",
] as const;

export interface EgressPolicyOptions {
  /** CIDRs always refused (checked first), e.g. the system's own etcd endpoints' addresses. */
  deny?: readonly string[];
  /** CIDRs allowed although a default range holds them (e.g. 127.0.0.1/32 for a local receiver). */
  allow?: readonly string[];
}

/** A request refused by the egress policy; its message says which address and why. */
export class EgressDenied extends Error {
  override readonly name = "EgressDenied";
}

/**
 * The one egress policy for every outbound request made on a user's behalf (completion callbacks,
 * downloads, uploads). An address is refused when the operator's deny list holds it; otherwise
 * allowed when the operator's allow list holds it; otherwise refused when a default range holds it
 * (loopback, link-local, unspecified, multicast). Checked after DNS resolution on every connection.
 */
export class EgressPolicy {
  private readonly denied: BlockList;
  private readonly allowed: BlockList;
  private readonly defaults: BlockList;

  constructor(options: EgressPolicyOptions = {}) {
    this.denied = blockList(options.deny ?? [], "deny");
    this.allowed = blockList(options.allow ?? [], "allow");
    this.defaults = blockList(DEFAULT_DENIED_CIDRS, "default");
  }

  /** Why a request may not reach `address` (an IP literal), or undefined when it may. */
  refusal(address: string): string | undefined {
    const ip = unmapped(address);
    const family = isIP(ip) === 6 ? "ipv6" : "ipv4";
    if (!isIP(ip)) return `${address} is not an IP address`;
    if (this.denied.check(ip, family)) return `address ${ip} is denied by the egress policy`;
    if (this.allowed.check(ip, family)) return undefined;
    if (this.defaults.check(ip, family))
      return `address ${ip} is in a range the egress policy denies (loopback, link-local, unspecified or multicast)`;
    return undefined;
  }

  /** Why `url` may not be requested, judged by its host alone when that is an IP literal (no DNS). */
  refusalOfUrlLiteral(url: string): string | undefined {
    let host: string;
    try {
      host = new URL(url).hostname.replace(/^\[|\]$/g, "");
    } catch {
      return undefined; // malformed URLs are the validation's to refuse
    }
    return isIP(host) ? this.refusal(host) : undefined;
  }

  /** A `lookup` for http(s) agents and net.connect: resolves, then refuses when any address is denied. */
  readonly lookup: LookupFunction = (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
      if (err) return callback(err, "", 0);
      const refused = addresses.map((a) => this.refusal(a.address)).find(Boolean);
      if (refused) return callback(new EgressDenied(`${hostname} resolves to a denied address: ${refused}`), "", 0);
      if (options.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
      callback(null, addresses[0]!.address, addresses[0]!.family);
    });
  };
}

function blockList(cidrs: readonly string[], what: string): BlockList {
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [net, bits] = cidr.split("/");
    const family = isIP(net ?? "");
    const prefix = bits === undefined ? (family === 6 ? 128 : 32) : Number(bits);
    if (!family || !Number.isInteger(prefix) || prefix < 0 || prefix > (family === 6 ? 128 : 32))
      throw new Error(`egress ${what} list: ${JSON.stringify(cidr)} is not a CIDR (like 10.0.0.0/8 or fd00::/8)`);
    list.addSubnet(net!, prefix, family === 6 ? "ipv6" : "ipv4");
  }
  return list;
}

/** `::ffff:127.0.0.1` → `127.0.0.1`, so that IPv4 rules hold for IPv4-mapped addresses. */
function unmapped(address: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return m ? m[1]! : address;
}
