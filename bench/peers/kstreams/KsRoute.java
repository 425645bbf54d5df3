// SPDX-License-Identifier: EUPL-1.2
//
// KsRoute - the Kafka Streams peer of `ketenbus route` for bench-e2e: the same
// 20 subscriptions (read from the spec bench-e2e writes from its one table) as
// filters and projections over Apache Avro generic records, with
// processing.guarantee=exactly_once_v2. Per input event: read the CloudEvents
// headers, decode the Confluent-framed Avro payload with its schema, and for
// every subscription whose types, exact source and payload field filter match,
// build the projected record (selected fields, HMAC-SHA-256 pseudonyms for the
// listed ones, under a per-subscriber key derived as ketenbus derives it),
// encode it, and send it to <out-prefix><subscriber> keyed by the subscriber's
// pseudonym of ce_subject. What it does not do that ketenbus does: the semantic
// checks (BSN 11-proef, patterns, code tables), duplicate detection by event id
// and dead-lettering (malformed input is only counted here).
//
// Usage: java -cp ... KsRoute --bootstrap HP --input TOPIC --out-prefix P
//          --app-id ID --spec FILE --schemas DIR --subject-key-file FILE
//          [--threads N] [--state-dir DIR] [--compression CODEC]

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.HashSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;

import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

import org.apache.avro.Schema;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryDecoder;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.io.EncoderFactory;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.Headers;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.streams.CloseOptions;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;

public final class KsRoute {

    /** A field path tree: which sub-fields of a record are selected. */
    static final class Node {
        final Map<String, Node> children = new LinkedHashMap<>();
        boolean whole; // the path ended here: the field is kept as it is
    }

    /** One subscription of the spec. */
    static final class Sub {
        String name;
        Set<String> types = new HashSet<>();
        String source;          // exact ce_source, or null
        String[] path;          // payload field filter path, or null
        String op;
        String[] values;
        Node fields;            // null: every field, the input value unchanged
        Set<String> pseudo = new HashSet<>();
        byte[] key;             // per-subscriber key (HMAC of the subject key)
        String sink;
        // Filled on first use by every stream thread's tasks (--threads N), so concurrent maps.
        final Map<Integer, Schema> projected = new ConcurrentHashMap<>();
        final Map<Integer, Integer> projectedId = new ConcurrentHashMap<>();
        final Map<Integer, GenericDatumWriter<GenericRecord>> writers = new ConcurrentHashMap<>();
    }

    static String arg(Map<String, String> a, String k) {
        String v = a.get(k);
        if (v == null) {
            System.err.println("kstreams: missing " + k);
            System.exit(2);
        }
        return v;
    }

    static byte[] hmac(byte[] key, byte[] data) {
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(key, "HmacSHA256"));
            return mac.doFinal(data);
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    static final char[] HEX = "0123456789abcdef".toCharArray();

    static String hex(byte[] b, int n) {
        char[] c = new char[n * 2];
        for (int i = 0; i < n; i++) {
            c[2 * i] = HEX[(b[i] >> 4) & 15];
            c[2 * i + 1] = HEX[b[i] & 15];
        }
        return new String(c);
    }

    static byte[] unhex(String s) {
        s = s.trim();
        byte[] b = new byte[s.length() / 2];
        for (int i = 0; i < b.length; i++)
            b[i] = (byte) Integer.parseInt(s.substring(2 * i, 2 * i + 2), 16);
        return b;
    }

    static List<Sub> loadSpec(Path spec, byte[] subjectKey) throws IOException {
        List<Sub> subs = new ArrayList<>();
        for (String line : Files.readAllLines(spec)) {
            if (line.isBlank())
                continue;
            String[] f = line.split("\t", -1);
            Sub s = new Sub();
            s.name = f[0];
            s.types.addAll(Arrays.asList(f[1].split(",")));
            s.source = f[2].equals("-") ? null : f[2];
            s.path = f[3].equals("-") ? null : f[3].split("\\.");
            s.op = f[4];
            s.values = f[5].equals("-") ? new String[0] : f[5].split(",");
            if (!f[6].equals("-")) {
                s.fields = new Node();
                for (String p : f[6].split(",")) {
                    Node n = s.fields;
                    for (String part : p.split("\\."))
                        n = n.children.computeIfAbsent(part, k -> new Node());
                    n.whole = true;
                }
            }
            if (!f[7].equals("-"))
                s.pseudo.addAll(Arrays.asList(f[7].split(",")));
            s.key = hmac(subjectKey, ("ketenbus-subscriber:" + s.name).getBytes(StandardCharsets.UTF_8));
            s.sink = "sink-" + s.name;
            subs.add(s);
        }
        return subs;
    }

    /** Schemas of the schema folder by their kb.schemaId. */
    static Map<Integer, Schema> loadSchemas(Path dir) throws IOException {
        Map<Integer, Schema> out = new HashMap<>();
        try (Stream<Path> files = Files.walk(dir)) {
            for (Path p : (Iterable<Path>) files.filter(x -> x.toString().endsWith(".avsc"))::iterator) {
                try {
                    Schema s = new Schema.Parser().parse(p.toFile());
                    Object id = s.getObjectProp("kb.schemaId");
                    if (id instanceof Number)
                        out.put(((Number) id).intValue(), s);
                } catch (Exception e) {
                    System.err.println("kstreams: skipping " + p + ": " + e.getMessage());
                }
            }
        }
        return out;
    }

    /* ------------------------------------------------------------ projection */

    static Schema nonNull(Schema s) {
        if (s.getType() != Schema.Type.UNION)
            return s;
        for (Schema b : s.getTypes())
            if (b.getType() != Schema.Type.NULL)
                return b;
        return s;
    }

    /** The projected form of field schema @p s under @p n (whole: unchanged). */
    static Schema projectSchema(Schema s, Node n, String name) {
        if (n.whole && n.children.isEmpty())
            return s;
        switch (s.getType()) {
        case UNION: {
            List<Schema> branches = new ArrayList<>();
            for (Schema b : s.getTypes())
                branches.add(b.getType() == Schema.Type.NULL ? b : projectSchema(b, n, name));
            return Schema.createUnion(branches);
        }
        case ARRAY:
            return Schema.createArray(projectSchema(s.getElementType(), n, name));
        case RECORD: {
            List<Schema.Field> fields = new ArrayList<>();
            for (Schema.Field f : s.getFields()) {
                Node c = n.children.get(f.name());
                if (c == null)
                    continue;
                fields.add(new Schema.Field(f.name(), projectSchema(f.schema(), c, name + "_" + f.name()),
                        f.doc(), f.defaultVal()));
            }
            return Schema.createRecord(name, null, null, false, fields);
        }
        default:
            throw new IllegalArgumentException("path into a " + s.getType());
        }
    }

    static Object projectValue(Object v, Schema target, Node n, String path, Sub sub, Mac mac) {
        if (v == null)
            return null;
        if (n.whole && n.children.isEmpty()) {
            if (sub.pseudo.contains(path) && v instanceof CharSequence)
                return hex(mac.doFinal(v.toString().getBytes(StandardCharsets.UTF_8)), 32);
            return v;
        }
        Schema t = nonNull(target);
        if (v instanceof GenericData.Array || v instanceof List) {
            List<?> in = (List<?>) v;
            GenericData.Array<Object> out = new GenericData.Array<>(in.size(), t);
            for (Object e : in)
                out.add(projectValue(e, t.getElementType(), n, path, sub, mac));
            return out;
        }
        GenericRecord src = (GenericRecord) v;
        GenericData.Record out = new GenericData.Record(t);
        for (Schema.Field f : t.getFields()) {
            String p = path.isEmpty() ? f.name() : path + "." + f.name();
            out.put(f.pos(), projectValue(src.get(f.name()), f.schema(), n.children.get(f.name()), p, sub, mac));
        }
        return out;
    }

    /** The value at @p path as text, or null when absent or null. */
    static String fieldText(GenericRecord r, String[] path) {
        Object v = r;
        for (String p : path) {
            if (!(v instanceof GenericRecord))
                return null;
            GenericRecord g = (GenericRecord) v;
            if (g.getSchema().getField(p) == null)
                return null;
            v = g.get(p);
        }
        return v == null || v instanceof GenericRecord || v instanceof List ? null : v.toString();
    }

    static int compare(String a, String b) {
        try {
            return Double.compare(Double.parseDouble(a), Double.parseDouble(b));
        } catch (NumberFormatException e) {
            return a.compareTo(b);
        }
    }

    static boolean accepts(Sub s, GenericRecord r) {
        if (s.path == null)
            return true;
        String v = fieldText(r, s.path);
        if (s.op.equals("exists"))
            return v != null;
        if (v == null)
            return false;
        switch (s.op) {
        case "in":
            for (String x : s.values)
                if (compare(v, x) == 0)
                    return true;
            return false;
        case "=": return compare(v, s.values[0]) == 0;
        case "!=": return compare(v, s.values[0]) != 0;
        case "<": return compare(v, s.values[0]) < 0;
        case "<=": return compare(v, s.values[0]) <= 0;
        case ">": return compare(v, s.values[0]) > 0;
        case ">=": return compare(v, s.values[0]) >= 0;
        default: return false;
        }
    }

    static int projectedSchemaId(String json) {
        int h = 0x811c9dc5;
        for (byte b : json.getBytes(StandardCharsets.UTF_8))
            h = (h ^ (b & 0xff)) * 16777619;
        return 0x40000000 | (h & 0x3fffffff);
    }

    static String header(Headers h, String name) {
        Header x = h.lastHeader(name);
        return x == null || x.value() == null ? null : new String(x.value(), StandardCharsets.UTF_8);
    }

    static final AtomicLong consumed = new AtomicLong(), delivered = new AtomicLong(), rejected = new AtomicLong();

    /** The routing step: one instance per stream task. */
    static final class RouteProcessor implements Processor<byte[], byte[], byte[], byte[]> {
        private final List<Sub> subs;
        private final Map<Integer, Schema> schemas;
        private final Map<Integer, GenericDatumReader<GenericRecord>> readers = new HashMap<>();
        private final Map<String, Mac> macs = new HashMap<>();
        private ProcessorContext<byte[], byte[]> ctx;
        private BinaryDecoder decoder;
        private BinaryEncoder encoder;
        private final ByteArrayOutputStream buf = new ByteArrayOutputStream(512);

        RouteProcessor(List<Sub> subs, Map<Integer, Schema> schemas) {
            this.subs = subs;
            this.schemas = schemas;
        }

        @Override
        public void init(ProcessorContext<byte[], byte[]> context) {
            ctx = context;
            try {
                for (Sub s : subs) {
                    Mac m = Mac.getInstance("HmacSHA256");
                    m.init(new SecretKeySpec(s.key, "HmacSHA256"));
                    macs.put(s.name, m);
                }
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        }

        @Override
        public void process(Record<byte[], byte[]> rec) {
            consumed.incrementAndGet();
            Headers h = rec.headers();
            String type = header(h, "ce_type"), source = header(h, "ce_source"),
                    subject = header(h, "ce_subject");
            byte[] v = rec.value();
            if (type == null || source == null || v == null || v.length < 5 || v[0] != 0) {
                rejected.incrementAndGet();
                return;
            }
            int sid = ByteBuffer.wrap(v, 1, 4).getInt();
            Schema schema = schemas.get(sid);
            if (schema == null) {
                rejected.incrementAndGet();
                return;
            }
            GenericRecord event;
            try {
                decoder = DecoderFactory.get().binaryDecoder(v, 5, v.length - 5, decoder);
                event = readers.computeIfAbsent(sid, k -> new GenericDatumReader<>(schema)).read(null, decoder);
            } catch (IOException | RuntimeException e) {
                rejected.incrementAndGet();
                return;
            }
            for (Sub s : subs) {
                if (!s.types.contains(type) || (s.source != null && !s.source.equals(source)) || !accepts(s, event))
                    continue;
                byte[] out = v;
                if (s.fields != null || !s.pseudo.isEmpty()) {
                    Schema ps = s.projected.computeIfAbsent(sid, k -> projectSchema(schema,
                            s.fields != null ? s.fields : wholeTree(schema),
                            "nl.ketenbus.out." + (Character.isDigit(s.name.charAt(0)) ? "_" : "")
                                    + s.name.replace('-', '_') + "." + schema.getName()));
                    int pid = s.projectedId.computeIfAbsent(sid, k -> projectedSchemaId(ps.toString()));
                    GenericRecord pr = (GenericRecord) projectValue(event, ps,
                            s.fields != null ? s.fields : wholeTree(schema), "", s, macs.get(s.name));
                    buf.reset();
                    buf.write(0);
                    buf.write(pid >>> 24);
                    buf.write(pid >>> 16);
                    buf.write(pid >>> 8);
                    buf.write(pid);
                    encoder = EncoderFactory.get().binaryEncoder(buf, encoder);
                    try {
                        s.writers.computeIfAbsent(sid, k -> new GenericDatumWriter<>(ps)).write(pr, encoder);
                        encoder.flush();
                    } catch (IOException e) {
                        throw new IllegalStateException(e);
                    }
                    out = buf.toByteArray();
                }
                byte[] key = rec.key();
                Headers oh = new RecordHeaders(h.toArray());
                if (subject != null && !subject.isEmpty()) {
                    Mac m = macs.get(s.name);
                    String k = hex(m.doFinal(("subject:" + subject).getBytes(StandardCharsets.UTF_8)), 16);
                    key = k.getBytes(StandardCharsets.UTF_8);
                    oh.remove("ce_subject");
                    oh.add("ce_subject", key);
                }
                ctx.forward(new Record<>(key, out, rec.timestamp(), oh), s.sink);
                delivered.incrementAndGet();
            }
        }
    }

    static Node wholeTree(Schema s) {
        Node n = new Node();
        for (Schema.Field f : s.getFields())
            n.children.computeIfAbsent(f.name(), k -> new Node()).whole = true;
        return n;
    }

    public static void main(String[] argv) throws Exception {
        Map<String, String> a = new HashMap<>();
        for (int i = 0; i + 1 < argv.length; i += 2)
            a.put(argv[i], argv[i + 1]);
        byte[] subjectKey = unhex(Files.readString(Path.of(arg(a, "--subject-key-file"))));
        List<Sub> subs = loadSpec(Path.of(arg(a, "--spec")), subjectKey);
        Map<Integer, Schema> schemas = loadSchemas(Path.of(arg(a, "--schemas")));
        String outPrefix = arg(a, "--out-prefix");

        Topology t = new Topology();
        t.addSource("in", new ByteArrayDeserializer(), new ByteArrayDeserializer(), arg(a, "--input"));
        t.addProcessor("route", () -> new RouteProcessor(subs, schemas), "in");
        for (Sub s : subs)
            t.addSink(s.sink, outPrefix + s.name, new ByteArraySerializer(), new ByteArraySerializer(), "route");

        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, arg(a, "--app-id"));
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, arg(a, "--bootstrap"));
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
        p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, Integer.parseInt(a.getOrDefault("--threads", "1")));
        p.put(StreamsConfig.STATE_DIR_CONFIG, a.getOrDefault("--state-dir", System.getProperty("java.io.tmpdir") + "/ksroute"));
        p.put(StreamsConfig.consumerPrefix("auto.offset.reset"), "earliest");
        // The codec of the sink batches: bench-e2e gives both contestants the router's.
        p.put(StreamsConfig.producerPrefix("compression.type"), a.getOrDefault("--compression", "none"));

        KafkaStreams streams = new KafkaStreams(t, p);
        CountDownLatch done = new CountDownLatch(1);
        streams.setStateListener((now, before) -> {
            System.out.println("kstreams: state " + before + " -> " + now);
            if (now == KafkaStreams.State.ERROR || now == KafkaStreams.State.NOT_RUNNING)
                done.countDown();
        });
        streams.setUncaughtExceptionHandler(e -> {
            // Say why before the state goes to ERROR: the bench only sees the process end.
            System.err.print("kstreams: stream thread failed: ");
            e.printStackTrace();
            return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            // Leave the group on the way out: by default a Streams member stays until its
            // session times out (45 s), and the bench starts the next run in the same group.
            streams.close(CloseOptions.groupMembershipOperation(CloseOptions.GroupMembershipOperation.LEAVE_GROUP)
                    .withTimeout(Duration.ofSeconds(20)));
            System.out.println("kstreams: stopped consumed=" + consumed.get() + " delivered=" + delivered.get()
                    + " rejected=" + rejected.get());
            System.out.flush();
        }));
        streams.start();
        System.out.println("kstreams: started with " + subs.size() + " subscriptions, " + schemas.size() + " schemas");
        done.await();
    }
}
