/**
 * The replication connection of the PostgreSQL capture: pg-logical-replication's
 * LogicalReplicationService for the connection, START_REPLICATION and standby
 * status updates, with its per-message path replaced.
 *
 * Why (issue 12 profile of the apply bench, PG -> PG): for every row the
 * library's CopyData handler made the message's WAL position as a hex
 * string (four strings), a Buffer view of the payload, an event through
 * eventemitter2 and a promise for an acknowledgement the capture switches
 * off; a twelfth of all bytes the capture's process allocated, and about 4%
 * of its CPU. Here a payload is decoded in place from its CopyData chunk
 * (RawTextPgoutputPlugin.parseAt) and handed to a callback; the keepalive's
 * position is read as a bigint. Everything else (connecting, the slot's
 * START_REPLICATION, acknowledge(), stop()) is the library's.
 */
import { LogicalReplicationService, PgoutputPlugin, type Pgoutput } from 'pg-logical-replication';
import { BinaryReader } from 'pg-logical-replication/dist/output-plugins/pgoutput/binary-reader.js';
import { beginWireMessage, takeWire } from '../pg-wire-rows.ts';
import { takeCopyData, type FramedStream } from './copy-framing.ts';
import { rawTextParser as rawText, useFastTuples, useFullRowMessages, type DirectRelation, type RowMessage } from './pg-tuple-reader.ts';

/** Offset of the pgoutput message in an XLogData CopyData chunk: 'w', WAL start, WAL end, send time. */
const XLOGDATA_HEADER = 25;
const XLOGDATA = 0x77; // 'w'
const KEEPALIVE = 0x6b; // 'k'

type Parser = Record<string, (reader: BinaryReader) => Pgoutput.Message>;

const NO_BYTES = Buffer.alloc(0);

/** The library reader's state (pg-tuple-reader.ts reads it the same way). */
interface ReaderState { _b: Buffer; _p: number; _e: number }

/** The parser method for each pgoutput message tag (the library's PgoutputParser.parse dispatch). */
const METHODS: Record<number, string> = {
  0x42: 'msgBegin', 0x4f: 'msgOrigin', 0x59: 'msgType', 0x52: 'msgRelation', 0x49: 'msgInsert',
  0x55: 'msgUpdate', 0x44: 'msgDelete', 0x54: 'msgTruncate', 0x4d: 'msgMessage', 0x43: 'msgCommit',
};

/** pgoutput plugin whose relation columns keep the server's text instead of pg's global type parsers. */
export class RawTextPgoutputPlugin extends PgoutputPlugin {
  private readonly methods: Parser;

  /** The parser's relation cache (relation oid -> the last Relation message). */
  private readonly relations: Map<number, Pgoutput.MessageRelation>;

  constructor(options: ConstructorParameters<typeof PgoutputPlugin>[0]) {
    super(options);
    const parser = (this as unknown as { parser: Parser & { _relationCache: Map<number, Pgoutput.MessageRelation> } }).parser;
    useFastTuples(parser);
    useFullRowMessages(parser);
    this.methods = parser;
    this.relations = parser._relationCache;
  }

  override parse(buffer: Buffer): Pgoutput.Message {
    return this.parseAt(buffer, 0);
  }

  /**
   * The one reader every message is parsed with: a parse is synchronous and nothing keeps the reader, so it is
   * pointed at each message in turn rather than made for it (issue 12: an object per change).
   */
  private readonly reader = new BinaryReader(NO_BYTES);

  /** The pgoutput message at `offset` of `buffer`, which ends at `end` (by default where the buffer does). */
  parseAt(buffer: Buffer, offset: number, end: number = buffer.length): Pgoutput.Message {
    const reader = this.reader;
    const at = reader as unknown as ReaderState;
    at._b = buffer;
    at._p = offset;
    // The tuple reader's bound (pg-tuple-reader.ts): the message's end, not the chunk's.
    at._e = end;
    try {
      return this.parseWith(reader, buffer, offset);
    } finally {
      // The chunk is not kept by the reader past its message.
      at._b = NO_BYTES;
    }
  }

  private parseWith(reader: BinaryReader, buffer: Buffer, offset: number): Pgoutput.Message {
    const tag = reader.readUint8();
    const method = METHODS[tag];
    if (!method) throw Error(`unknown pgoutput message ${String.fromCharCode(tag)}`);
    beginWireMessage();
    // A Relation message replaces the parser's cached relation, which the assembler bound (DirectRelation).
    const prev = tag === 0x52 ? this.relations.get(buffer.readInt32BE(offset + 1)) : undefined;
    const msg = this.methods[method]!.call(this.methods, reader);
    // The parser caches this object and reads later tuples through it, so the swap covers every row.
    if (msg.tag === 'relation') keepBinding(prev, msg);
    // Whether this row message's tuples are already the change's rows (pg-tuple-reader.ts DirectRelation): the
    // relation can be bound or unbound by the time the assembler takes the message. Their bytes, marked as they
    // were read (views of the socket's chunk, copy-framing.ts), go with the message (pg-wire-rows.ts).
    else if ((msg.tag === 'insert' || msg.tag === 'update' || msg.tag === 'delete') && (msg.relation as DirectRelation).rowsDirect === true) {
      const row = msg as RowMessage;
      row.rowsDirect = true;
      const old = msg.tag !== 'insert' && (msg.old !== null || msg.key !== null);
      row.wire = takeWire(msg.tag !== 'delete', old, msg.tag !== 'insert' && msg.old !== null);
    }
    return msg;
  }
}

/**
 * A Relation message's columns keep the server's text (the assembler binds them when it takes the message), unless
 * it repeats the relation it replaces, which the assembler had bound to read rows directly: then it keeps that
 * binding at once. The assembler binds an unchanged relation again the same way (PgTransactionAssembler.onRelation:
 * same wire signature, same state), but rows parsed before it takes the message would have been read as text,
 * without their bytes (issue 12: the server sends the relation again after any invalidation of it, an autoanalyze
 * among them, and up to QUEUE_HIGH rows were parsed ahead each time).
 */
function keepBinding(prev: Pgoutput.MessageRelation | undefined, msg: Pgoutput.MessageRelation): void {
  const same = prev !== undefined && (prev as DirectRelation).rowsDirect === true && prev.schema === msg.schema && prev.name === msg.name
    && prev.replicaIdentity === msg.replicaIdentity && prev.columns.length === msg.columns.length
    && prev.columns.every((c, i) => {
      const m = msg.columns[i]!;
      return c.name === m.name && c.typeOid === m.typeOid && c.typeMod === m.typeMod && c.flags === m.flags;
    });
  for (let i = 0; i < msg.columns.length; i++) msg.columns[i]!.parser = same ? prev!.columns[i]!.parser : rawText;
  if (same) (msg as DirectRelation).rowsDirect = true;
}

export interface ReplicationHandlers {
  /** A decoded pgoutput message, in arrival order, called from the socket's data event. */
  message(msg: Pgoutput.Message): void;
  /** A primary keepalive: how far the server has sent, and whether it asks for a status update now. */
  heartbeat(walEnd: bigint, replyRequested: boolean): void;
}

/** The library's internals this subclass drives (the same fields its own subscribe() uses). */
interface ServiceInternals {
  _stop: boolean;
  client(): Promise<[unknown, { stream: FramedStream; once(ev: string, fn: () => void): void; removeAllListeners(ev: string): void }]>;
  checkStandbyStatus(enable: boolean): void;
  stop(): Promise<unknown>;
  emit(ev: string, ...args: unknown[]): boolean;
}

function readLsn64(chunk: Buffer, at: number): bigint {
  return (BigInt(chunk.readUInt32BE(at)) << 32n) | BigInt(chunk.readUInt32BE(at + 4));
}

export class PgReplicationStream extends LogicalReplicationService {
  constructor(
    clientConfig: ConstructorParameters<typeof LogicalReplicationService>[0],
    config: ConstructorParameters<typeof LogicalReplicationService>[1],
    private readonly handlers: ReplicationHandlers,
  ) {
    super(clientConfig, config);
  }

  /**
   * The library's subscribe() with this module's CopyData handler: resolves when the stream ends,
   * rejects (and emits 'error') when it fails. `plugin` must be a RawTextPgoutputPlugin.
   */
  override async subscribe(plugin: PgoutputPlugin, slotName: string, uptoLsn?: string): Promise<this> {
    const self = this as unknown as ServiceInternals;
    const parser = plugin as RawTextPgoutputPlugin;
    try {
      const [client, connection] = await self.client();
      connection.once('replicationStart', () => {
        self._stop = false;
        self.emit('start');
        self.checkStandbyStatus(true);
      });
      // CopyData messages are framed here, straight from the socket's chunks (copy-framing.ts); pg never sees them.
      connection.removeAllListeners('copyData');
      takeCopyData(connection.stream, (buf, start, end) => {
        try {
          const kind = buf[start];
          if (kind === XLOGDATA) this.handlers.message(parser.parseAt(buf, start + XLOGDATA_HEADER, end));
          else if (kind === KEEPALIVE) this.handlers.heartbeat(readLsn64(buf, start + 1), buf[start + 17] === 1);
        } catch (err) {
          // A message that does not decode fails the stream (the capture's 'error' listener), not the process.
          self.emit('error', err);
        }
      });
      await plugin.start(client as never, slotName, uptoLsn ?? '0/00000000').catch((e: unknown) => {
        if (!self._stop || !/Connection\s+terminated/i.test(String(e))) throw e;
      });
      return this;
    } catch (e) {
      await self.stop();
      self.emit('error', e);
      throw e;
    }
  }
}
