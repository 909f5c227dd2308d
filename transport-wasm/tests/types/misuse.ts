// The published types refuse misuse: each `@ts-expect-error` must meet an error, or tsc
// fails (`scripts/wasm typecheck` compiles this).
import { Producer } from 'kafka-edge';
async function bad(p: Producer): Promise<void> {
  // @ts-expect-error: a key is a string, a Uint8Array or null
  await p.send({ topic: 't', messages: [{ key: 42, value: 'v' }] });
  // @ts-expect-error: bootstrap.servers or bridge.url is required
  await Producer.connect({ 'linger.ms': 5 });
  // @ts-expect-error: bridge.token is a string
  await Producer.connect({ 'bridge.url': 'ws://127.0.0.1:8080/kafka', 'bridge.token': undefined as unknown as object });
}
void bad;
