package eddy.bench;

import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Base64;
import java.util.HashMap;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.JoinWindows;
import org.apache.kafka.streams.kstream.KGroupedStream;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.StreamJoined;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.TimeWindows;

/**
 * Kafka Streams side of eddy's state and join benchmarks. For count and
 * window-count the output is byte-for-byte what eddy writes: counts as
 * decimal text, windowed keys as {"key":"..","start":..,"end":..} JSON
 * ("key_base64" for non-UTF-8 keys). For the joins (--right names the second
 * input): "enrich" left-joins the input stream with the table read from
 * --right, adding the row under "customer" to the JSON object (Jackson, as a
 * Kafka Streams user would); "window-join" inner-joins the input with the
 * stream --right within --window-ms either way (grace --grace-ms), keeping
 * the right value.
 * Exits by itself once --expect records were consumed and the input has been
 * idle for --idle-exit-ms; prints one JSON timing line on stdout.
 */
public final class KStreamsBench {
    private static final String USAGE =
        "usage: KStreamsBench --bootstrap HOST:PORT --app-id ID --input TOPIC --output TOPIC\n"
        + "  --pipeline count|window-count|enrich|window-join --cache-bytes N --commit-ms N --threads N --state-dir DIR\n"
        + "  [--right TOPIC] [--window-ms 60000] [--grace-ms 0] [--expect N] [--idle-exit-ms 3000]\n"
        + "  [--close-timeout-ms 60000] [--warmup]";

    private static final AtomicLong consumed = new AtomicLong();
    private static final com.fasterxml.jackson.databind.ObjectMapper JSON =
        new com.fasterxml.jackson.databind.ObjectMapper();
    private static String right;
    private static long graceMs;
    private static volatile long firstNanos = 0;
    private static volatile long lastNanos = 0;

    public static void main(String[] argv) throws Exception {
        Map<String, String> a = parseArgs(argv);
        String bootstrap = req(a, "bootstrap"), appId = req(a, "app-id");
        String input = req(a, "input"), output = req(a, "output"), pipeline = req(a, "pipeline");
        long cacheBytes = Long.parseLong(req(a, "cache-bytes"));
        long commitMs = Long.parseLong(req(a, "commit-ms"));
        int threads = Integer.parseInt(req(a, "threads"));
        String stateDir = req(a, "state-dir");
        long windowMs = Long.parseLong(a.getOrDefault("window-ms", "60000"));
        right = a.get("right");
        graceMs = Long.parseLong(a.getOrDefault("grace-ms", "0"));
        long expect = Long.parseLong(a.getOrDefault("expect", "0"));
        long idleMs = Long.parseLong(a.getOrDefault("idle-exit-ms", "3000"));
        long closeTimeoutMs = Long.parseLong(a.getOrDefault("close-timeout-ms", "60000"));
        boolean warmup = a.containsKey("warmup");
        if (warmup) {
            // Same JVM, same input, another application id: the JIT warms up
            // before the measured pass.
            runOnce(bootstrap, appId + "-warmup", input, output, pipeline, cacheBytes, commitMs,
                threads, stateDir + "/warmup", windowMs, expect, idleMs, closeTimeoutMs);
            consumed.set(0);
            firstNanos = 0;
            lastNanos = 0;
            System.out.println("{\"event\":\"measuring\"}");
            System.out.flush();
        }
        boolean failed = runOnce(bootstrap, appId, input, output, pipeline, cacheBytes, commitMs,
            threads, stateDir, windowMs, expect, idleMs, closeTimeoutMs);
        // Streams leaves a few non-daemon threads (e.g. state cleaner) behind.
        System.exit(failed ? 1 : 0);
    }

    private static boolean runOnce(String bootstrap, String appId, String input, String output,
            String pipeline, long cacheBytes, long commitMs, int threads, String stateDir,
            long windowMs, long expect, long idleMs, long closeTimeoutMs) throws Exception {

        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, appId);
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.AT_LEAST_ONCE);
        p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, cacheBytes);
        p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, commitMs);
        p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, threads);
        p.put(StreamsConfig.STATE_DIR_CONFIG, stateDir);
        p.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.ByteArraySerde.class);
        p.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.ByteArraySerde.class);
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");

        StreamsBuilder b = new StreamsBuilder();
        Consumed<byte[], byte[]> bytes = Consumed.with(Serdes.ByteArray(), Serdes.ByteArray());
        KStream<byte[], byte[]> in = b
            .stream(input, bytes)
            .peek((k, v) -> {
                long now = System.nanoTime();
                if (consumed.getAndIncrement() == 0) firstNanos = now;
                lastNanos = now;
            });
        KGroupedStream<byte[], byte[]> grouped =
            in.groupByKey(Grouped.with(Serdes.ByteArray(), Serdes.ByteArray()));
        Produced<byte[], byte[]> out = Produced.with(Serdes.ByteArray(), Serdes.ByteArray());
        if ((pipeline.equals("enrich") || pipeline.equals("window-join")) && right == null) {
            die("--pipeline " + pipeline + " needs --right");
        }
        switch (pipeline) {
            case "enrich":
                in.leftJoin(b.table(right, bytes), KStreamsBench::merge).to(output, out);
                break;
            case "window-join":
                in.join(b.stream(right, bytes), (l, r) -> r,
                        JoinWindows.ofTimeDifferenceAndGrace(Duration.ofMillis(windowMs), Duration.ofMillis(graceMs)),
                        StreamJoined.with(Serdes.ByteArray(), Serdes.ByteArray(), Serdes.ByteArray()))
                    .to(output, out);
                break;
            case "count":
                grouped.count().toStream()
                    .mapValues(KStreamsBench::decimal)
                    .to(output, out);
                break;
            case "window-count":
                grouped.windowedBy(TimeWindows.ofSizeWithNoGrace(Duration.ofMillis(windowMs)))
                    .count().toStream()
                    .map((wk, v) -> KeyValue.pair(
                        windowedKey(wk.key(), wk.window().start(), wk.window().end()), decimal(v)))
                    .to(output, out);
                break;
            default:
                die("unknown --pipeline " + pipeline);
        }

        KafkaStreams streams = new KafkaStreams(b.build(), p);
        streams.setUncaughtExceptionHandler(e -> {
            System.err.println("kstreams-bench: stream thread failed: " + e);
            return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler
                .StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        streams.cleanUp(); // local state of an earlier run with this app id

        long t0 = System.nanoTime();
        streams.start();
        boolean failed = false;
        while (true) {
            Thread.sleep(20);
            KafkaStreams.State s = streams.state();
            if (s == KafkaStreams.State.ERROR || s == KafkaStreams.State.NOT_RUNNING
                    || s == KafkaStreams.State.PENDING_ERROR) {
                System.err.println("kstreams-bench: streams instance entered state " + s);
                failed = true;
                break;
            }
            long n = consumed.get();
            if (n == 0 || n < expect) continue;
            if ((System.nanoTime() - lastNanos) / 1_000_000 >= idleMs) break;
        }
        long closeStart = System.nanoTime();
        boolean closed = streams.close(Duration.ofMillis(closeTimeoutMs));
        long t1 = System.nanoTime();
        if (!closed) {
            System.err.println("kstreams-bench: close() timed out after " + closeTimeoutMs + " ms");
            failed = true;
        }
        long n = consumed.get();
        System.out.println("{\"records\":" + n
            + ",\"elapsed_ms\":" + ms(t1 - t0)
            + ",\"first_record_ms\":" + (n == 0 ? -1 : ms(firstNanos - t0))
            + ",\"last_record_ms\":" + (n == 0 ? -1 : ms(lastNanos - t0))
            + ",\"close_ms\":" + ms(t1 - closeStart) + "}");
        System.out.flush();
        return failed;
    }

    private static long ms(long nanos) {
        return nanos / 1_000_000;
    }

    /** The order (a JSON object) with the customer row (JSON, or null) under "customer". */
    private static byte[] merge(byte[] order, byte[] customer) {
        try {
            com.fasterxml.jackson.databind.node.ObjectNode o =
                (com.fasterxml.jackson.databind.node.ObjectNode) JSON.readTree(order);
            o.set("customer", customer == null
                ? com.fasterxml.jackson.databind.node.NullNode.getInstance()
                : JSON.readTree(customer));
            return JSON.writeValueAsBytes(o);
        } catch (java.io.IOException e) {
            throw new RuntimeException(e);
        }
    }

    private static byte[] decimal(Long v) {
        return v == null ? null : Long.toString(v).getBytes(StandardCharsets.US_ASCII);
    }

    /** Same bytes as eddy's windows::windowed_key (serde_json string escaping). */
    static byte[] windowedKey(byte[] key, long start, long end) {
        StringBuilder sb = new StringBuilder(key.length + 48);
        String k = utf8OrNull(key);
        if (k != null) {
            sb.append("{\"key\":\"");
            for (int i = 0; i < k.length(); i++) {
                char c = k.charAt(i);
                switch (c) {
                    case '"': sb.append("\\\""); break;
                    case '\\': sb.append("\\\\"); break;
                    case '\b': sb.append("\\b"); break;
                    case '\f': sb.append("\\f"); break;
                    case '\n': sb.append("\\n"); break;
                    case '\r': sb.append("\\r"); break;
                    case '\t': sb.append("\\t"); break;
                    default:
                        if (c < 0x20) sb.append(String.format("\\u%04x", (int) c));
                        else sb.append(c);
                }
            }
            sb.append('"');
        } else {
            sb.append("{\"key_base64\":\"").append(Base64.getEncoder().encodeToString(key)).append('"');
        }
        sb.append(",\"start\":").append(start).append(",\"end\":").append(end).append('}');
        return sb.toString().getBytes(StandardCharsets.UTF_8);
    }

    private static String utf8OrNull(byte[] b) {
        try {
            return StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT)
                .decode(ByteBuffer.wrap(b)).toString();
        } catch (CharacterCodingException e) {
            return null;
        }
    }

    private static Map<String, String> parseArgs(String[] argv) {
        Map<String, String> m = new HashMap<>();
        for (int i = 0; i < argv.length; i++) {
            String s = argv[i];
            if (s.equals("-h") || s.equals("--help")) {
                System.out.println(USAGE);
                System.exit(0);
            }
            if (!s.startsWith("--")) die("unexpected argument " + s);
            String name = s.substring(2), val;
            if (name.equals("warmup")) {
                m.put(name, "true");
                continue;
            }
            int eq = name.indexOf('=');
            if (eq >= 0) {
                val = name.substring(eq + 1);
                name = name.substring(0, eq);
            } else {
                if (i + 1 >= argv.length) die("missing value for " + s);
                val = argv[++i];
            }
            m.put(name, val);
        }
        return m;
    }

    private static String req(Map<String, String> a, String name) {
        String v = a.get(name);
        if (v == null) die("missing --" + name);
        return v;
    }

    private static void die(String msg) {
        System.err.println("kstreams-bench: " + msg + "\n" + USAGE);
        System.exit(2);
    }
}
