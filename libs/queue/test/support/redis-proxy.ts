import { connect, createServer, type Socket } from "node:net";

export interface RedisProxy {
  /** A Redis URL that goes through the proxy. */
  url: string;
  /** Redis goes away for everyone connected through the proxy: every connection is cut, new ones are refused. */
  kill(): Promise<void>;
}

/**
 * A TCP proxy in front of the test Redis, so a test can make Redis vanish for the code under
 * test alone (the test's own connections go straight to Redis).
 */
export async function startRedisProxy(redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379"): Promise<RedisProxy> {
  const target = new URL(redisUrl);
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(Number(target.port || 6379), target.hostname);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("error", () => socket.destroy());
      socket.on("close", () => {
        sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no TCP address");
  const url = new URL(redisUrl);
  url.hostname = "127.0.0.1";
  url.port = String(address.port);
  return {
    url: url.toString(),
    async kill() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}
