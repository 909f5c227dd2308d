// The published package as a user gets it: installed from the `npm pack` tarball into a
// scratch project, imported by name from plain JavaScript (`scripts/wasm pack` runs this
// there with BOOTSTRAP and TOPIC set). Prints one line per record: partition and offset.
import { Producer } from 'kafka-edge';

const producer = await Producer.connect({ 'bootstrap.servers': process.env.BOOTSTRAP, acks: 'all' });
const meta = await producer.send({
  topic: process.env.TOPIC,
  messages: Array.from({ length: 10 }, (_, i) => ({ key: `js-${i}`, value: `from plain JavaScript ${i}` })),
});
for (const m of meta) console.log(`js ${m.partition} ${m.baseOffset}`);
await producer.close();
