package dev.kafkaedge.oracle;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Properties;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.config.ConfigDef;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.record.TimestampType;
import org.apache.kafka.common.record.internal.DefaultRecordBatch;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.MemoryRecordsBuilder;
import org.apache.kafka.common.record.internal.Record;
import org.apache.kafka.common.record.internal.RecordBatch;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.utils.Utils;

/**
 * The Java reference oracle. Every sub-command reads JSON lines (or hex lines) on stdin and
 * answers one line per input line on stdout, so one JVM serves many cases.
 *
 * <pre>
 * batch            JSON batch description per line  -> RecordBatch v2 bytes (hex) from MemoryRecordsBuilder
 * verify           hex batch bytes per line         -> JSON: ensureValid() and every record decoded
 * murmur2 N        hex key per line                 -> "hash partition" (Utils.murmur2, toPositive(h) % N)
 * produce B T [k=v ...]  JSON record per line       -> JSON outcome per record, Java's KafkaProducer
 * produce --bootstrap B --topic T --count N [--pace-ms M] [-X k=v ...]
 *                  (no stdin)                       -> one JSON summary line: N records (key "i", value
 *                                                      "T-i") by KafkaProducer with the given producer
 *                                                      properties (security.protocol, sasl.*, ssl.*, acks, ...),
 *                                                      one every M ms if given (each acknowledged before the next)
 *                  [--rate R] [--ack-log F]         R records a second (not waiting for acks); F gets one line per
 *                                                      outcome, "UNIX_MICROS PARTITION OFFSET" (-1 and the error
 *                                                      on failure), written in the callback (scripts/failover)
 * txn --bootstrap B --topic T --steps commit:N,abort:M,... [-X k=v ...]
 *                  (no stdin)                       -> one JSON summary line: KafkaProducer with transactional.id
 *                                                      (default "oracle-T"): initTransactions, then per step a
 *                                                      transaction of N records (key "k{i}", value "{step}-{i}"
 *                                                      with step "commit-a", "abort-b", ... by position), flushed,
 *                                                      then committed or aborted; {"committed":..,"aborted":..}.
 *                                                      A last step expire:N:SECS sends N records, waits SECS s
 *                                                      (past transaction.timeout.ms), then commits; the summary's
 *                                                      "expire_commit" is "ok" or the class of the exception
 *                                                      thrown, "expire_cause" its cause's
 * txn --bootstrap B --topic T --perf N --per-txn K --record-size S [-X k=v ...]
 *                                                   -> {"records":N,"ms":..,"records_per_sec":..}: N records of S
 *                                                      bytes in transactions of K records, each committed
 * perf ARGS...     ProducerPerformance (kafka-producer-perf-test) with its own arguments
 * client-quota B CLIENT_ID RATE (no stdin)         -> "ok": producer_byte_rate RATE (bytes/s) for that
 *                                                      client.id set through Java's Admin (RATE "-" removes it)
 * config           (no stdin)                       -> every property of ProducerConfig.configDef(), one JSON
 *                                                      line each: {"name","type","default" (null: none),
 *                                                      "has_default","validator"}
 * config-check     JSON {"key":..,"value":..} per line -> "ok", or "refused: MESSAGE": whether
 *                                                      new ProducerConfig(...) takes that value (the other
 *                                                      properties at their defaults, bootstrap and serializers set)
 * </pre>
 *
 * Batch description: {"base_offset":0,"partition_leader_epoch":-1,"producer_id":-1,
 * "producer_epoch":-1,"base_sequence":-1,"transactional":false,"compression":"none",
 * "timestamp_type":"create","log_append_time":-1,"records":[{"timestamp":1,"key":"hex"|null,
 * "value":"hex"|null,"headers":[["name","hex"|null]]}]}
 */
public final class Oracle {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final HexFormat HEX = HexFormat.of();

  public static void main(String[] args) throws Exception {
    if (args.length == 0) {
      System.err.println("usage: oracle batch|verify|murmur2 N|produce BOOTSTRAP TOPIC [k=v ...]"
          + "|produce --bootstrap B --topic T --count N [-X k=v ...]|perf ARGS");
      System.exit(2);
    }
    PrintStream out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    switch (args[0]) {
      case "batch" -> lines(in, line -> out.println(HEX.formatHex(batch(JSON.readTree(line)))));
      case "verify" -> lines(in, line -> out.println(JSON.writeValueAsString(verify(HEX.parseHex(line.trim())))));
      case "murmur2" -> {
        int n = Integer.parseInt(args[1]);
        // Every line is a key, an empty line the empty key.
        String line;
        while ((line = in.readLine()) != null) {
          int h = Utils.murmur2(HEX.parseHex(line.trim()));
          out.println(h + " " + (Utils.toPositive(h) % n));
        }
      }
      case "produce" -> {
        if (args.length > 1 && args[1].startsWith("--")) {
          System.exit(produceCount(args, out));
        }
        produce(args, in, out);
      }
      case "txn" -> System.exit(txn(args, out));
      case "perf" -> {
        String[] rest = new String[args.length - 1];
        System.arraycopy(args, 1, rest, 0, rest.length);
        org.apache.kafka.tools.ProducerPerformance.main(rest);
      }
      case "config" -> {
        for (ConfigDef.ConfigKey k : ProducerConfig.configDef().configKeys().values()) {
          ObjectNode o = JSON.createObjectNode();
          o.put("name", k.name);
          o.put("type", k.type.toString());
          o.put("has_default", k.hasDefault());
          o.put("default", k.hasDefault() ? ConfigDef.convertToString(k.defaultValue, k.type) : null);
          o.put("validator", k.validator == null ? null : k.validator.toString());
          out.println(JSON.writeValueAsString(o));
        }
      }
      case "client-quota" -> {
        java.util.Map<String, Object> m = new java.util.HashMap<>();
        m.put("bootstrap.servers", args[1]);
        try (org.apache.kafka.clients.admin.Admin admin = org.apache.kafka.clients.admin.Admin.create(m)) {
          var entity = new org.apache.kafka.common.quota.ClientQuotaEntity(
              java.util.Map.of(org.apache.kafka.common.quota.ClientQuotaEntity.CLIENT_ID, args[2]));
          Double rate = args[3].equals("-") ? null : Double.valueOf(args[3]);
          var op = new org.apache.kafka.common.quota.ClientQuotaAlteration.Op("producer_byte_rate", rate);
          admin.alterClientQuotas(java.util.List.of(
              new org.apache.kafka.common.quota.ClientQuotaAlteration(entity, java.util.List.of(op)))).all().get();
        }
        out.println("ok");
      }
      case "config-check" -> lines(in, line -> out.println(configCheck(JSON.readTree(line))));
      default -> {
        System.err.println("unknown sub-command " + args[0]);
        System.exit(2);
      }
    }
    out.flush();
  }

  /** Whether Java's ProducerConfig takes {@code key=value}, the rest at their defaults. */
  private static String configCheck(JsonNode n) {
    java.util.Map<String, Object> m = new java.util.HashMap<>();
    m.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, "localhost:9092");
    m.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
    m.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
    m.put(n.get("key").asText(), n.get("value").asText());
    try {
      new ProducerConfig(m);
      return "ok";
    } catch (Exception e) {
      return "refused: " + String.valueOf(e.getMessage()).replace('\n', ' ');
    }
  }

  interface LineHandler {
    void handle(String line) throws Exception;
  }

  private static void lines(BufferedReader in, LineHandler h) throws Exception {
    String line;
    while ((line = in.readLine()) != null) {
      if (!line.isBlank()) h.handle(line);
    }
  }

  private static byte[] bytes(JsonNode n) {
    return n == null || n.isNull() ? null : HEX.parseHex(n.asText());
  }

  private static String hex(ByteBuffer b) {
    if (b == null) return null;
    byte[] a = new byte[b.remaining()];
    b.duplicate().get(a);
    return HEX.formatHex(a);
  }

  private static Header[] headers(JsonNode arr) {
    if (arr == null || arr.isNull()) return Record.EMPTY_HEADERS;
    Header[] hs = new Header[arr.size()];
    for (int i = 0; i < arr.size(); i++) {
      hs[i] = new RecordHeader(arr.get(i).get(0).asText(), bytes(arr.get(i).get(1)));
    }
    return hs;
  }

  static Compression compression(String name) {
    return switch (name) {
      case "none" -> Compression.NONE;
      case "gzip" -> Compression.gzip().build();
      case "snappy" -> Compression.snappy().build();
      case "lz4" -> Compression.lz4().build();
      case "zstd" -> Compression.zstd().build();
      default -> throw new IllegalArgumentException("compression " + name);
    };
  }

  /** The bytes of one RecordBatch v2, exactly as Java's MemoryRecordsBuilder writes them. */
  static byte[] batch(JsonNode d) {
    JsonNode records = d.get("records");
    int cap = 1024;
    for (JsonNode r : records) {
      cap += 64 + (r.path("key").isNull() ? 0 : r.path("key").asText().length())
          + (r.path("value").isNull() ? 0 : r.path("value").asText().length());
      for (JsonNode h : r.path("headers")) cap += 16 + h.get(0).asText().length() * 4 + h.get(1).asText("").length();
    }
    ByteBuffer buf = ByteBuffer.allocate(cap);
    TimestampType tt = d.path("timestamp_type").asText("create").equals("log_append")
        ? TimestampType.LOG_APPEND_TIME : TimestampType.CREATE_TIME;
    MemoryRecordsBuilder b = MemoryRecords.builder(
        buf,
        RecordBatch.MAGIC_VALUE_V2,
        compression(d.path("compression").asText("none")),
        tt,
        d.path("base_offset").asLong(0),
        d.path("log_append_time").asLong(RecordBatch.NO_TIMESTAMP),
        d.path("producer_id").asLong(RecordBatch.NO_PRODUCER_ID),
        (short) d.path("producer_epoch").asInt(RecordBatch.NO_PRODUCER_EPOCH),
        d.path("base_sequence").asInt(RecordBatch.NO_SEQUENCE),
        d.path("transactional").asBoolean(false),
        false,
        d.path("partition_leader_epoch").asInt(RecordBatch.NO_PARTITION_LEADER_EPOCH));
    long offset = d.path("base_offset").asLong(0);
    for (JsonNode r : records) {
      b.appendWithOffset(offset++, r.path("timestamp").asLong(), bytes(r.get("key")), bytes(r.get("value")),
          headers(r.get("headers")));
    }
    MemoryRecords m = b.build();
    ByteBuffer out = m.buffer();
    byte[] a = new byte[out.remaining()];
    out.get(a);
    return a;
  }

  /** Checks batch bytes with Java (CRC, every record) and describes them. */
  static ObjectNode verify(byte[] data) {
    ObjectNode res = JSON.createObjectNode();
    ArrayNode batches = res.putArray("batches");
    try {
      MemoryRecords m = MemoryRecords.readableRecords(ByteBuffer.wrap(data));
      int total = 0;
      for (RecordBatch rb : m.batches()) {
        rb.ensureValid();
        ObjectNode b = batches.addObject();
        b.put("base_offset", rb.baseOffset());
        b.put("last_offset", rb.lastOffset());
        b.put("size", rb.sizeInBytes());
        b.put("magic", rb.magic());
        b.put("crc", rb.checksum());
        b.put("partition_leader_epoch", rb.partitionLeaderEpoch());
        b.put("compression", rb.compressionType().name);
        b.put("timestamp_type", rb.timestampType() == TimestampType.LOG_APPEND_TIME ? "log_append" : "create");
        b.put("transactional", rb.isTransactional());
        b.put("control", rb.isControlBatch());
        if (rb instanceof DefaultRecordBatch dr) b.put("base_timestamp", dr.baseTimestamp());
        b.put("max_timestamp", rb.maxTimestamp());
        b.put("producer_id", rb.producerId());
        b.put("producer_epoch", rb.producerEpoch());
        b.put("base_sequence", rb.baseSequence());
        b.put("count", rb.countOrNull());
        ArrayNode recs = b.putArray("records");
        for (Record r : rb) {
          r.ensureValid();
          ObjectNode o = recs.addObject();
          o.put("offset", r.offset());
          o.put("timestamp", r.timestamp());
          o.put("key", hex(r.key()));
          o.put("value", hex(r.value()));
          ArrayNode hs = o.putArray("headers");
          for (Header h : r.headers()) {
            ArrayNode pair = hs.addArray();
            pair.add(h.key());
            pair.add(h.value() == null ? null : HEX.formatHex(h.value()));
          }
          total++;
        }
      }
      if (m.validBytes() != data.length) {
        res.put("error", "trailing bytes: " + (data.length - m.validBytes()) + " of " + data.length);
      }
      res.put("records", total);
      res.put("valid", !res.has("error"));
    } catch (Exception e) {
      res.put("valid", false);
      res.put("error", e.getClass().getSimpleName() + ": " + e.getMessage());
    }
    return res;
  }

  /**
   * Java's own KafkaProducer with the given properties, N generated records (key "i", value
   * "TOPIC-i", UTF-8): one JSON summary line, e.g. {"ok":true,"count":N,"acked":N,"errors":0,
   * "offsets":{"0":[first,last]},"ms":M} or {"ok":false,...,"error_class":"org.apache.kafka.common.
   * errors.SaslAuthenticationException","error":"the broker's message"}. Exit status 0 when every
   * record was acknowledged, else 1. Defaults (each can be overridden by -X): max.block.ms=15000,
   * delivery.timeout.ms=30000, request.timeout.ms=10000, so that a refused login fails in seconds.
   */
  /** The {@code txn} sub-command: Java's transactional producer through a scripted scenario. */
  static int txn(String[] args, PrintStream out) throws Exception {
    Properties p = new Properties();
    String topic = null;
    String steps = null;
    int perf = -1;
    int perTxn = 1000;
    int recordSize = 100;
    for (int i = 1; i < args.length; i++) {
      String a = args[i];
      if (i + 1 >= args.length) throw new IllegalArgumentException("txn: " + a + " needs a value");
      String v = args[++i];
      switch (a) {
        case "--bootstrap" -> p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, v);
        case "--topic" -> topic = v;
        case "--steps" -> steps = v;
        case "--perf" -> perf = Integer.parseInt(v);
        case "--per-txn" -> perTxn = Integer.parseInt(v);
        case "--record-size" -> recordSize = Integer.parseInt(v);
        case "-X" -> {
          int eq = v.indexOf('=');
          if (eq < 1) throw new IllegalArgumentException("txn: -X takes key=value, got " + v);
          p.put(v.substring(0, eq), v.substring(eq + 1));
        }
        default -> throw new IllegalArgumentException("txn: unknown option " + a);
      }
    }
    if (topic == null || (steps == null && perf < 0)) {
      throw new IllegalArgumentException("txn: --bootstrap, --topic and --steps or --perf are required");
    }
    p.putIfAbsent(ProducerConfig.TRANSACTIONAL_ID_CONFIG, "oracle-" + topic);
    ObjectNode res = JSON.createObjectNode();
    try (KafkaProducer<byte[], byte[]> producer =
        new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer())) {
      producer.initTransactions();
      if (perf >= 0) {
        byte[] value = new byte[recordSize];
        java.util.Arrays.fill(value, (byte) 'x');
        long t0 = System.nanoTime();
        int sent = 0;
        while (sent < perf) {
          producer.beginTransaction();
          int n = Math.min(perTxn, perf - sent);
          for (int i = 0; i < n; i++) {
            producer.send(new ProducerRecord<>(topic, value));
          }
          producer.commitTransaction();
          sent += n;
        }
        long ms = (System.nanoTime() - t0) / 1_000_000;
        res.put("records", perf);
        res.put("ms", ms);
        res.put("records_per_sec", ms == 0 ? 0 : perf * 1000L / ms);
      } else {
        int committed = 0;
        int aborted = 0;
        String[] list = steps.split(",");
        for (int s = 0; s < list.length; s++) {
          String[] kv = list[s].split(":");
          boolean commit = kv[0].equals("commit");
          int n = Integer.parseInt(kv[1]);
          String tag = kv[0] + "-" + (char) ('a' + s);
          producer.beginTransaction();
          for (int i = 0; i < n; i++) {
            producer.send(new ProducerRecord<>(topic, ("k" + i).getBytes(StandardCharsets.UTF_8),
                (tag + "-" + i).getBytes(StandardCharsets.UTF_8)));
          }
          producer.flush();
          if (kv[0].equals("expire")) {
            // expire:N:SECS: wait past transaction.timeout.ms, then try to commit; what
            // the commit throws (the producer cannot go on after it: the last step).
            Thread.sleep(Long.parseLong(kv[2]) * 1000L);
            try {
              producer.commitTransaction();
              res.put("expire_commit", "ok");
            } catch (KafkaException e) {
              res.put("expire_commit", e.getClass().getSimpleName());
              res.put("expire_cause", e.getCause() == null ? null : e.getCause().getClass().getSimpleName());
            }
            break;
          }
          if (commit) {
            producer.commitTransaction();
            committed += n;
          } else {
            producer.abortTransaction();
            aborted += n;
          }
        }
        res.put("committed", committed);
        res.put("aborted", aborted);
      }
    }
    out.println(JSON.writeValueAsString(res));
    out.flush();
    return 0;
  }

  static int produceCount(String[] args, PrintStream out) throws Exception {
    Properties p = new Properties();
    p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "15000");
    p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "30000");
    p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
    String topic = null;
    int count = -1;
    long paceMs = 0;
    double rate = 0;
    String ackLogPath = null;
    for (int i = 1; i < args.length; i++) {
      String a = args[i];
      if (i + 1 >= args.length) throw new IllegalArgumentException("produce: " + a + " needs a value");
      String v = args[++i];
      switch (a) {
        case "--bootstrap" -> p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, v);
        case "--topic" -> topic = v;
        case "--count" -> count = Integer.parseInt(v);
        case "--pace-ms" -> paceMs = Long.parseLong(v);
        case "--rate" -> rate = Double.parseDouble(v);
        case "--ack-log" -> ackLogPath = v;
        case "-X" -> {
          int eq = v.indexOf('=');
          if (eq < 1) throw new IllegalArgumentException("produce: -X takes key=value, got " + v);
          p.put(v.substring(0, eq), v.substring(eq + 1));
        }
        default -> throw new IllegalArgumentException("produce: unknown option " + a);
      }
    }
    if (topic == null || count < 0 || !p.containsKey(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG)) {
      throw new IllegalArgumentException("produce: --bootstrap, --topic and --count are required");
    }
    ObjectNode res = JSON.createObjectNode();
    res.put("count", count);
    java.util.concurrent.atomic.AtomicInteger acked = new java.util.concurrent.atomic.AtomicInteger();
    java.util.concurrent.atomic.AtomicInteger errors = new java.util.concurrent.atomic.AtomicInteger();
    java.util.concurrent.atomic.AtomicReference<Throwable> first = new java.util.concurrent.atomic.AtomicReference<>();
    java.util.Map<Integer, long[]> offsets = new java.util.concurrent.ConcurrentSkipListMap<>();
    long t0 = System.nanoTime();
    // Callbacks run on the producer's I/O thread, one at a time.
    PrintStream ackLog = ackLogPath == null ? null
        : new PrintStream(new java.io.BufferedOutputStream(new java.io.FileOutputStream(ackLogPath), 1 << 16), false,
            StandardCharsets.UTF_8);
    try (KafkaProducer<byte[], byte[]> producer =
        new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer())) {
      for (int i = 0; i < count; i++) {
        ProducerRecord<byte[], byte[]> rec = new ProducerRecord<>(topic,
            Integer.toString(i).getBytes(StandardCharsets.UTF_8), (topic + "-" + i).getBytes(StandardCharsets.UTF_8));
        try {
          producer.send(rec, (md, err) -> {
            if (ackLog != null) {
              java.time.Instant now = java.time.Instant.now();
              long us = now.getEpochSecond() * 1_000_000L + now.getNano() / 1_000;
              ackLog.println(err != null ? us + " -1 " + err : us + " " + md.partition() + " " + md.offset());
            }
            if (err != null) {
              errors.incrementAndGet();
              first.compareAndSet(null, err);
            } else {
              acked.incrementAndGet();
              offsets.merge(md.partition(), new long[] {md.offset(), md.offset()},
                  (a, b) -> new long[] {Math.min(a[0], b[0]), Math.max(a[1], b[1])});
            }
          });
        } catch (Exception e) {
          errors.incrementAndGet();
          first.compareAndSet(null, e);
        }
        if (paceMs > 0) {
          producer.flush();
          Thread.sleep(paceMs);
        } else if (rate > 0) {
          // As ProducerPerformance's throttle: hold the average rate.
          long dueNs = t0 + (long) ((i + 1) * 1e9 / rate);
          long waitNs = dueNs - System.nanoTime();
          if (waitNs > 1_000_000) Thread.sleep(waitNs / 1_000_000, (int) (waitNs % 1_000_000));
        }
        // A refused login fails every record the same way: stop after the first.
        if (first.get() != null) break;
      }
      producer.flush();
      // The client's own count of (re-)authentications on its connections (KIP-368).
      for (var m : producer.metrics().entrySet()) {
        String name = m.getKey().name();
        if (m.getKey().group().equals("producer-metrics")
            && (name.equals("successful-authentication-total") || name.equals("successful-reauthentication-total")
                || name.equals("failed-authentication-total"))) {
          res.put(name.replace("-total", "").replace("successful-", ""), ((Number) m.getValue().metricValue()).longValue());
        }
      }
    } catch (Exception e) {
      first.compareAndSet(null, e);
    }
    if (ackLog != null) ackLog.close();
    res.put("acked", acked.get());
    res.put("errors", errors.get());
    ObjectNode offs = res.putObject("offsets");
    offsets.forEach((part, fl) -> offs.putArray(Integer.toString(part)).add(fl[0]).add(fl[1]));
    res.put("ms", (System.nanoTime() - t0) / 1_000_000);
    boolean ok = acked.get() == count && first.get() == null;
    res.put("ok", ok);
    Throwable err = first.get();
    if (err != null) {
      // The cause that names the broker's answer (e.g. a KafkaException wrapping an
      // authentication failure).
      Throwable root = err;
      while (!(root instanceof org.apache.kafka.common.errors.AuthenticationException) && root.getCause() != null) {
        root = root.getCause();
      }
      if (!(root instanceof org.apache.kafka.common.errors.AuthenticationException)) root = err;
      res.put("error_class", root.getClass().getName());
      res.put("error", String.valueOf(root.getMessage()));
      if (root != err) res.put("outer_error", err.getClass().getName() + ": " + err.getMessage());
      // What lies under it, e.g. the certificate check that failed the TLS handshake.
      ArrayNode causes = res.putArray("causes");
      for (Throwable c = root.getCause(); c != null && causes.size() < 6; c = c.getCause()) {
        causes.add(c.getClass().getSimpleName() + ": " + c.getMessage());
      }
    }
    out.println(JSON.writeValueAsString(res));
    out.flush();
    return ok ? 0 : 1;
  }

  /** Java's own KafkaProducer: one JSON outcome line per input record, in input order. */
  static void produce(String[] args, BufferedReader in, PrintStream out) throws Exception {
    Properties p = new Properties();
    p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, args[1]);
    String topic = args[2];
    for (int i = 3; i < args.length; i++) {
      int eq = args[i].indexOf('=');
      p.put(args[i].substring(0, eq), args[i].substring(eq + 1));
    }
    // Records are sent as they are read, so a test can pace its input (and kill a broker
    // mid-run); outcomes are printed in input order once everything has completed.
    List<ObjectNode> outcomes = java.util.Collections.synchronizedList(new ArrayList<>());
    long t0 = System.nanoTime();
    int n = 0;
    try (KafkaProducer<byte[], byte[]> producer =
        new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer())) {
      String line;
      while ((line = in.readLine()) != null) {
        if (line.isBlank()) continue;
        JsonNode r = JSON.readTree(line);
        Integer partition = r.path("partition").isNumber() ? r.get("partition").asInt() : null;
        Long ts = r.path("timestamp").isNumber() ? r.get("timestamp").asLong() : null;
        ProducerRecord<byte[], byte[]> rec = new ProducerRecord<>(topic, partition, ts, bytes(r.get("key")),
            bytes(r.get("value")), java.util.Arrays.asList(headers(r.get("headers"))));
        final int idx = n++;
        outcomes.add(null);
        try {
          producer.send(rec, (md, err) -> {
            ObjectNode o = JSON.createObjectNode();
            o.put("i", idx);
            if (err != null) {
              o.put("error", err.getClass().getSimpleName() + ": " + err.getMessage());
            } else {
              o.put("partition", md.partition());
              o.put("offset", md.offset());
              o.put("timestamp", md.timestamp());
            }
            outcomes.set(idx, o);
          });
        } catch (Exception e) {
          ObjectNode o = JSON.createObjectNode();
          o.put("i", idx);
          o.put("error", e.getClass().getSimpleName() + ": " + e.getMessage());
          outcomes.set(idx, o);
        }
      }
      producer.flush();
    }
    long ms = (System.nanoTime() - t0) / 1_000_000;
    int errors = 0;
    for (int i = 0; i < n; i++) {
      ObjectNode o = outcomes.get(i);
      if (o == null) {
        o = JSON.createObjectNode().put("i", i).put("error", "no outcome after close");
      }
      if (o.has("error")) errors++;
      out.println(JSON.writeValueAsString(o));
    }
    System.err.printf("oracle produce: %d records, %d errors, %d ms%n", n, errors, ms);
    out.flush();
    if (errors > 0) System.exit(1);
  }
}
