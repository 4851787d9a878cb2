// A TypeScript client of SMS over gRPC-web, as a browser would call it
// (@connectrpc/connect-web uses fetch, which Node 20 has): register a node,
// send a heartbeat and a resource report, read them back, watch for a
// change, and clean up. Run: SMS_URL=http://127.0.0.1:50051 npm start
// (SMS_TOKEN, if the server has --auth-token-file). Exits non-zero on any
// failure, so CI runs it against a real server.
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { NodeService, WatchNodesResponse_Kind } from "../../../web/src/gen/sms/node_pb";

const baseUrl = process.env.SMS_URL ?? "http://127.0.0.1:50051";
const token = process.env.SMS_TOKEN;

const bearer: Interceptor = (next) => (req) => {
  if (token) req.header.set("Authorization", `Bearer ${token}`);
  return next(req);
};

const client = createClient(NodeService, createGrpcWebTransport({ baseUrl, interceptors: [bearer] }));

function check(ok: boolean, what: string): asserts ok {
  if (!ok) throw new Error(`check failed: ${what}`);
}

async function main() {
  // Register: an empty uuid makes the server pick one.
  const reg = await client.registerNode({
    node: { ipAddress: "10.0.0.42", port: 8080, metadata: { zone: "example", owner: "ts-client" } },
  });
  const uuid = reg.nodeUuid;
  console.log(`registered ${uuid}`);

  const hb = await client.heartbeat({ uuid, healthInfo: { disk: "ok" } });
  console.log(`heartbeat at ${hb.serverTimestamp} (server clock)`); // int64 fields are bigint

  await client.updateNodeResource({
    resource: { nodeUuid: uuid, cpuUsagePercent: 12.5, memoryUsagePercent: 40, totalMemoryBytes: 8n << 30n },
  });

  const got = await client.getNodeWithResource({ uuid });
  check(got.found && got.node?.ipAddress === "10.0.0.42", "GetNodeWithResource returns the node");
  check(got.resource?.cpuUsagePercent === 12.5, "GetNodeWithResource returns the report");
  console.log(`node ${got.node?.uuid}: ${got.node?.status}, cpu ${got.resource?.cpuUsagePercent}%`);

  const list = await client.listNodes({ metadataFilter: { zone: "example" } });
  check(list.nodes.some((n) => n.uuid === uuid), "ListNodes lists the node");
  console.log(`${list.nodes.length} node(s) in zone=example`);

  // WatchNodes is a server stream, over gRPC-web as well: wait for the
  // snapshot, change the node's status, and read the event.
  const abort = new AbortController();
  const stream = client.watchNodes({ uuids: [uuid] }, { signal: abort.signal })[Symbol.asyncIterator]();
  for (;;) {
    const { value } = await stream.next();
    if (value?.kind === WatchNodesResponse_Kind.SNAPSHOT_END) break;
  }
  await client.updateNode({ uuid, node: { ipAddress: "10.0.0.42", port: 8080, status: "decommissioning" } });
  const { value: ev } = await stream.next();
  check(ev?.kind === WatchNodesResponse_Kind.STATUS_CHANGED, "WatchNodes streams the status change");
  console.log(`watch: ${WatchNodesResponse_Kind[ev.kind]} ${ev.previousStatus} -> ${ev.node?.status}`);
  abort.abort();

  const stats = await client.getClusterStats({});
  console.log(`cluster: ${stats.totalNodes} node(s), ${stats.nodesWithResources} with reports`);

  await client.deleteNode({ uuid });
  try {
    await client.getNode({ uuid });
    throw new Error("GetNode after DeleteNode succeeded");
  } catch (err) {
    check(ConnectError.from(err).code === Code.NotFound, "GetNode after DeleteNode is NOT_FOUND");
  }
  console.log(`deleted ${uuid}; GetNode: not_found`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
