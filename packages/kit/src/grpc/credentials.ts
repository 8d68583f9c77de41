import { readFileSync } from "node:fs";
import { ChannelCredentials, ServerCredentials } from "@grpc/grpc-js";

/** PEM files for mutual TLS: the CA that signs every party, and this party's certificate and key. */
export interface TlsFiles {
  caFile: string;
  certFile: string;
  keyFile: string;
}

/** Without TLS files: plaintext. With them: TLS that requires and verifies a client certificate. */
export function serverCredentials(tls?: TlsFiles): ServerCredentials {
  if (!tls) return ServerCredentials.createInsecure();
  const [ca, cert, key] = read(tls);
  return ServerCredentials.createSsl(ca, [{ cert_chain: cert, private_key: key }], true);
}

export function channelCredentials(tls?: TlsFiles): ChannelCredentials {
  if (!tls) return ChannelCredentials.createInsecure();
  const [ca, cert, key] = read(tls);
  return ChannelCredentials.createSsl(ca, key, cert);
}

function read(tls: TlsFiles): [Buffer, Buffer, Buffer] {
  const load = (what: string, file: string) => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new Error(`cannot read TLS ${what} ${file}: ${(err as Error).message}`);
    }
  };
  return [load("CA file", tls.caFile), load("certificate file", tls.certFile), load("key file", tls.keyFile)];
}
