// SubscribeToShard with the AWS SDK for JavaScript v3 over HTTP/2 and TLS,
// for TestClientJavaScript (clients_test.go): an independent client of
// kdsfake's event streams.
//
// Usage: node subscribe.mjs ENDPOINT CONSUMER_ARN SHARD_ID WANT
//
// Subscribes from TRIM_HORIZON and prints one JSON line per event
// ({"event":...}) and per record ({"record":...}) until WANT records have
// arrived, then exits 0. Any error, or the event stream ending early, is
// printed to stderr and exits 1; after 60 s it gives up with exit 2.
//
// The SDK is resolved from $SHARDFLOW_TESTENV_DIR/node_modules (the pinned
// testenv/). ESM imports ignore NODE_PATH, so it is loaded with
// createRequire. The server's self-signed certificate is trusted through
// NODE_EXTRA_CA_CERTS.
import { createRequire } from "node:module";
import path from "node:path";

const [endpoint, consumerARN, shardId, wantArg] = process.argv.slice(2);
const want = Number(wantArg);
if (!endpoint || !consumerARN || !shardId || !(want > 0)) {
  console.error("usage: node subscribe.mjs ENDPOINT CONSUMER_ARN SHARD_ID WANT");
  process.exit(64);
}
const testenv = process.env.SHARDFLOW_TESTENV_DIR;
if (!testenv) {
  console.error("SHARDFLOW_TESTENV_DIR is not set");
  process.exit(64);
}
const require = createRequire(path.join(path.resolve(testenv), "package.json"));
const { KinesisClient, SubscribeToShardCommand } = require("@aws-sdk/client-kinesis");
const { NodeHttp2Handler } = require("@smithy/node-http-handler");

setTimeout(() => {
  console.error(`timeout: fewer than ${want} records after 60s`);
  process.exit(2);
}, 60_000).unref();

const client = new KinesisClient({
  region: "us-east-1",
  endpoint,
  credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret" },
  requestHandler: new NodeHttp2Handler({ requestTimeout: 0 }),
  maxAttempts: 1,
});

let got = 0;
try {
  const out = await client.send(
    new SubscribeToShardCommand({
      ConsumerARN: consumerARN,
      ShardId: shardId,
      StartingPosition: { Type: "TRIM_HORIZON" },
    }),
  );
  for await (const ev of out.EventStream) {
    const e = ev.SubscribeToShardEvent;
    if (!e) {
      throw new Error(`unexpected event ${JSON.stringify(Object.keys(ev))}`);
    }
    console.log(
      JSON.stringify({
        event: {
          records: e.Records.length,
          continuation: e.ContinuationSequenceNumber ?? null,
          millisBehindLatest: e.MillisBehindLatest ?? null,
        },
      }),
    );
    for (const r of e.Records) {
      console.log(
        JSON.stringify({
          record: {
            seq: r.SequenceNumber,
            pk: r.PartitionKey,
            data: Buffer.from(r.Data).toString("utf8"),
            arrival: r.ApproximateArrivalTimestamp?.toISOString() ?? null,
          },
        }),
      );
      got++;
    }
    if (got >= want) {
      break; // ends the subscription
    }
  }
} catch (err) {
  console.error(`SubscribeToShard failed: ${err?.name}: ${err?.message}`);
  process.exit(1);
} finally {
  client.destroy();
}
if (got < want) {
  console.error(`the event stream ended after ${got} of ${want} records`);
  process.exit(1);
}
process.exit(0);
