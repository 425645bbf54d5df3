// SPDX-License-Identifier: EUPL-1.2
//
// AvroInterop.java - a Kafka consumer with no ketenbus code: it reads events
// from a ketenbus topic, takes the schema id from the Confluent framing
// (byte 0 = 0, bytes 1-4 = id, big endian), fetches that schema from the
// registry's REST API (GET /schemas/ids/{id}, plain java.net.http), and
// decodes the Avro payload with Apache Avro. One line per event on stdout
// with non-personal fields for the test to check; exit 0 once COUNT events
// were decoded, 1 on any failure or when they do not arrive in time.
//
//   java -cp '<libs>/*' AvroInterop.java BOOTSTRAP TOPIC REGISTRY_URL COUNT [TIMEOUT_S]

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryDecoder;
import org.apache.avro.io.DecoderFactory;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

public class AvroInterop {
    private static final HttpClient http = HttpClient.newHttpClient();
    private static final ObjectMapper json = new ObjectMapper();
    private static final Map<Integer, Schema> schemas = new HashMap<>();

    /** The writer schema of id, from the registry (cached). */
    static Schema schema(String registry, int id) throws IOException, InterruptedException {
        Schema s = schemas.get(id);
        if (s != null) return s;
        HttpRequest req = HttpRequest.newBuilder(URI.create(registry + "/schemas/ids/" + id))
                .header("Accept", "application/vnd.schemaregistry.v1+json").GET().build();
        HttpResponse<String> resp = http.send(req, HttpResponse.BodyHandlers.ofString());
        if (resp.statusCode() != 200)
            throw new IOException("registry answered " + resp.statusCode() + " for id " + id);
        JsonNode body = json.readTree(resp.body());
        s = new Schema.Parser().parse(body.get("schema").asText());
        schemas.put(id, s);
        System.out.println("fetched id=" + id + " schema=" + s.getFullName());
        return s;
    }

    /** A dotted path into a record ("herkomst.berichtType"), or "-" when absent/null. */
    static String field(GenericRecord r, String path) {
        Object cur = r;
        for (String part : path.split("\\.")) {
            if (!(cur instanceof GenericRecord)) return "-";
            GenericRecord g = (GenericRecord) cur;
            if (g.getSchema().getField(part) == null) return "-";
            cur = g.get(part);
        }
        return cur == null ? "-" : cur.toString();
    }

    static String header(ConsumerRecord<byte[], byte[]> rec, String name) {
        Header h = rec.headers().lastHeader(name);
        return h == null ? "-" : new String(h.value(), StandardCharsets.UTF_8);
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], topic = args[1], registry = args[2];
        int want = Integer.parseInt(args[3]);
        long deadline = System.currentTimeMillis() + 1000L * (args.length > 4 ? Integer.parseInt(args[4]) : 60);

        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.GROUP_ID_CONFIG, "avro-interop-" + UUID.randomUUID());
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());

        int decoded = 0;
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(p)) {
            consumer.subscribe(List.of(topic));
            while (decoded < want && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<byte[], byte[]> rec : consumer.poll(Duration.ofMillis(500))) {
                    byte[] v = rec.value();
                    if (v == null || v.length < 5 || v[0] != 0)
                        throw new IOException("offset " + rec.offset() + ": not Confluent-framed");
                    int id = ByteBuffer.wrap(v, 1, 4).getInt();
                    Schema s = schema(registry, id);
                    BinaryDecoder dec = DecoderFactory.get().binaryDecoder(v, 5, v.length - 5, null);
                    GenericRecord r = new GenericDatumReader<GenericRecord>(s).read(null, dec);
                    if (!dec.isEnd())
                        throw new IOException("offset " + rec.offset() + ": trailing bytes after the record");
                    System.out.println("event offset=" + rec.offset() + " id=" + id
                            + " ce_type=" + header(rec, "ce_type")
                            + " schema=" + s.getFullName()
                            + " berichtType=" + field(r, "herkomst.berichtType")
                            + " gemeente=" + field(r, "inschrijving.gemeente")
                            + " geboortedatum=" + field(r, "kind.geboortedatum")
                            + " ontvangen=" + field(r, "herkomst.ontvangen"));
                    decoded++;
                }
            }
        }
        System.out.println("decoded " + decoded + " of " + want);
        System.exit(decoded >= want ? 0 : 1);
    }
}
