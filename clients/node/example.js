// Issues a one-time code, verifies the code the user types, then shows the
// two errors a caller must handle: a rate limit (RESOURCE_EXHAUSTED with a
// google.rpc.RetryInfo) and a bad request (INVALID_ARGUMENT with a
// google.rpc.BadRequest).
//
//   node example.js --target 127.0.0.1:50051 --recipient ada@example.com
//
// The stubs are made at run time from protos/ by @grpc/proto-loader; the
// error details are decoded with protobufjs from Debian's google.rpc protos
// (set AUTHCODE_GOOGLEAPIS_DIR to the folder that holds google/rpc/*.proto
// when they live elsewhere).

import path from 'node:path';
import { createInterface } from 'node:readline/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';

import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';

const PROTOS_DIR = fileURLToPath(new URL('../../protos/', import.meta.url));
const GOOGLEAPIS_DIR = process.env.AUTHCODE_GOOGLEAPIS_DIR ||
  '/usr/share/gocode/src/github.com/gogo/googleapis';

// Field names as in the .proto files, enums as their names, 64-bit integers
// as Numbers: the same shape for responses and for error details.
const PROTO_OPTIONS = { keepCase: true, enums: String, longs: Number,
  defaults: true };
const DEADLINE_MS = 10_000;

// The google.rpc messages that error details come in; main loads them
// first, so that a missing proto fails before any call is made.
let rpcTypes = null;

function loadRpcTypes() {
  const files = ['google/rpc/status.proto', 'google/rpc/error_details.proto']
    .map((file) => path.join(GOOGLEAPIS_DIR, file));
  try {
    return new protobuf.Root().loadSync(files, { keepCase: true });
  } catch (err) {
    throw new Error(`cannot load the google.rpc protos from ${GOOGLEAPIS_DIR}` +
      ` (set AUTHCODE_GOOGLEAPIS_DIR): ${err.message}`);
  }
}

function connect(target) {
  const definition = protoLoader.loadSync('authcode/v1/authcode.proto',
    { ...PROTO_OPTIONS, includeDirs: [PROTOS_DIR] });
  const { AuthCodeService } =
    grpc.loadPackageDefinition(definition).authcode.v1;
  // Plaintext suits a server on loopback; for one with TLS use
  // grpc.credentials.createSsl(rootCerts, privateKey, certChain).
  return new AuthCodeService(target, grpc.credentials.createInsecure());
}

// Turns a callback-style unary method into `async (request) => response`,
// with a deadline on every call.
function unary(client, method) {
  const call = promisify(client[method].bind(client));
  return (request) => call(request, { deadline: Date.now() + DEADLINE_MS });
}

// Returns the detail of type `typeName` (e.g. 'google.rpc.RetryInfo') that
// a failed call carried, as a plain object, or null when it has none.
// gRPC puts a serialized google.rpc.Status in the binary trailer
// grpc-status-details-bin; its details are Anys named by type URL.
function findErrorDetail(err, typeName) {
  const [bytes] = err.metadata?.get('grpc-status-details-bin') ?? [];
  if (!bytes) return null;

  const status = rpcTypes.lookupType('google.rpc.Status').decode(bytes);
  const any = status.details.find(
    (detail) => detail.type_url.split('/').pop() === typeName);
  if (!any) return null;

  const type = rpcTypes.lookupType(typeName);
  return type.toObject(type.decode(any.value), PROTO_OPTIONS);
}

// Awaits a call that should fail with `code` and returns its error; any
// other outcome is thrown.
async function expectError(call, code) {
  try {
    await call;
  } catch (err) {
    if (err.code === code) return err;
    throw err;
  }
  throw new Error(`expected ${grpc.status[code]}, but the call succeeded`);
}

async function prompt(question) {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  const closed = new Promise((resolve, reject) => rl.once('close',
    () => reject(new Error('stdin ended before a code was entered'))));
  try {
    return (await Promise.race([rl.question(question), closed])).trim();
  } finally {
    rl.close();
  }
}

async function run(client, { recipient, purpose }) {
  const issueCode = unary(client, 'IssueCode');
  const verifyCode = unary(client, 'VerifyCode');

  const issued = await issueCode({ recipient, purpose });
  console.log(`issued ${issued.code_id}`);

  // A wrong or expired code is an answer, not an error.
  const code = await prompt('code: ');
  const { outcome } = await verifyCode({ recipient, purpose, code });
  if (outcome !== 'VERIFY_OUTCOME_VERIFIED') {
    console.log(`rejected ${outcome}`);
    return 1;
  }
  console.log('verified');

  // Asking again at once trips the issue rate limit.
  const limited = await expectError(issueCode({ recipient, purpose }),
    grpc.status.RESOURCE_EXHAUSTED);
  const retryInfo = findErrorDetail(limited, 'google.rpc.RetryInfo');
  if (!retryInfo) throw new Error(`no RetryInfo in: ${limited.message}`);
  const { seconds = 0, nanos = 0 } = retryInfo.retry_delay ?? {};
  console.log(`rate limited, retry in ${Math.ceil(seconds + nanos / 1e9)}s`);

  // A malformed request names each bad field.
  const invalid = await expectError(
    issueCode({ recipient: 'not an address', purpose }),
    grpc.status.INVALID_ARGUMENT);
  const badRequest = findErrorDetail(invalid, 'google.rpc.BadRequest');
  if (!badRequest) throw new Error(`no BadRequest in: ${invalid.message}`);
  for (const { field, description } of badRequest.field_violations) {
    console.log(`bad request: ${field}: ${description}`);
  }
  return 0;
}

async function main() {
  const { values: args } = parseArgs({
    options: {
      target: { type: 'string' },
      recipient: { type: 'string' },
      purpose: { type: 'string', default: 'login' },
    },
  });
  if (!args.target || !args.recipient) {
    console.error('usage: node example.js --target HOST:PORT ' +
      '--recipient ADDRESS [--purpose PURPOSE]');
    return 2;
  }

  rpcTypes = loadRpcTypes();
  const client = connect(args.target);
  try {
    return await run(client, args);
  } finally {
    client.close();
  }
}

try {
  process.exitCode = await main();
} catch (err) {
  console.error(`example: ${err.message}`);
  process.exitCode = 1;
}
