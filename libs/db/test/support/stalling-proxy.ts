import { connect, createServer, type Socket } from "node:net";

export interface StallingProxy {
  /** The loopback port that reaches the target through the proxy. */
  port: number;
  /** From now on nothing passes either way, and the connections stay open (a partition, a hung server). */
  stall(): void;
  close(): void;
}

/** A TCP proxy to `host:port` that, once stalled, passes nothing on in either direction. */
export async function stallingProxyTo(host: string, port: number): Promise<StallingProxy> {
  let stalled = false;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(port, host);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("error", () => undefined);
    }
    client.on("data", (chunk) => void (stalled || upstream.write(chunk)));
    upstream.on("data", (chunk) => void (stalled || client.write(chunk)));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as { port: number }).port,
    stall: () => void (stalled = true),
    close: () => {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
}
