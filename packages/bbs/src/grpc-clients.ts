import { createClient, type ServiceClient, type TlsFiles } from "@diego/kit";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";

/** One client per (service, address), made on first use and closed together. */
export class GrpcClients {
  private readonly clients = new Map<string, ServiceClient<GenServiceMethods>>();

  constructor(private readonly options: { tls?: TlsFiles; defaultTimeoutMs: number }) {}

  get<S extends GenServiceMethods>(service: GenService<S>, address: string): ServiceClient<S> {
    const key = `${service.typeName} ${address}`;
    let client = this.clients.get(key);
    if (!client) {
      client = createClient(service, address, this.options) as unknown as ServiceClient<GenServiceMethods>;
      this.clients.set(key, client);
    }
    return client as unknown as ServiceClient<S>;
  }

  closeAll(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}
