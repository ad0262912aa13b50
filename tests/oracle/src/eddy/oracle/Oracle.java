package eddy.oracle;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.PrintStream;
import java.math.BigDecimal;
import java.math.MathContext;
import java.math.RoundingMode;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.Comparator;
import java.util.HashMap;
import java.util.Map;
import java.util.Properties;
import java.util.stream.Stream;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.TestInputTopic;
import org.apache.kafka.streams.TestOutputTopic;
import org.apache.kafka.streams.TopologyTestDriver;
import org.apache.kafka.streams.kstream.*;
import org.apache.kafka.streams.test.TestRecord;

/**
 * Runs one Kafka Streams aggregation (count or sum, optionally windowed) or one
 * join (with --join) under TopologyTestDriver and prints the sink topic's records as JSON lines.
 * See tests/oracle/README.md for the CLI.
 */
public final class Oracle {
    static final String SENTINEL = "__eddy_advance__";
    static final ObjectMapper JSON = new ObjectMapper()
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);
    static final Serde<String> S = Serdes.String();

    // ---- options
    final Map<String, String> opt = new HashMap<>();
    String source, sink, group, op, sumField, window, emit;
    boolean table;
    long grace, cacheBytes, size, advance;
    String windowKind;

    public static void main(String[] args) {
        try {
            if (args.length == 2 && args[0].equals("--cases")) {
                cases(Path.of(args[1]));
                return;
            }
            new Oracle().run(args);
        } catch (Usage e) {
            System.err.println("oracle: " + e.getMessage());
            System.exit(64);
        } catch (Exception e) {
            System.err.println("oracle: " + e);
            for (Throwable c = e.getCause(); c != null; c = c.getCause()) {
                System.err.println("  caused by: " + c);
            }
            System.exit(1);
        }
    }

    /**
     * Many runs in one JVM: each line of {@code list} is an output file, a tab, and the
     * arguments of one run separated by spaces. A run that fails writes its error to
     * the output file with ".error" appended instead.
     */
    static void cases(Path list) throws IOException {
        PrintStream stdout = System.out;
        for (String line : Files.readAllLines(list, StandardCharsets.UTF_8)) {
            if (line.isBlank()) continue;
            String[] parts = line.split("\t", 2);
            if (parts.length != 2) throw new Usage("--cases: want OUTPUT<TAB>ARGS, got '" + line + "'");
            Path output = Path.of(parts[0]);
            try (PrintStream out = new PrintStream(Files.newOutputStream(output), false, StandardCharsets.UTF_8)) {
                System.setOut(out);
                new Oracle().run(parts[1].trim().split(" +"));
            } catch (Exception e) {
                Files.writeString(Path.of(parts[0] + ".error"), e.toString(), StandardCharsets.UTF_8);
            } finally {
                System.setOut(stdout);
            }
        }
    }

    static final class Usage extends RuntimeException {
        Usage(String m) { super(m); }
    }

    void parseArgs(String[] args) {
        for (int i = 0; i < args.length; i += 2) {
            String a = args[i];
            if (!a.startsWith("--") || i + 1 >= args.length) {
                throw new Usage("expected --name value pairs, got '" + a + "'");
            }
            opt.put(a.substring(2), args[i + 1]);
        }
        for (String k : opt.keySet()) {
            if (!java.util.List.of("input", "source", "as", "group", "op", "sum-field", "window",
                    "grace", "emit", "cache-bytes", "sink").contains(k)) {
                throw new Usage("unknown option --" + k);
            }
        }
        source = need("source");
        sink = need("sink");
        need("input");
        table = switch (opt.getOrDefault("as", "stream")) {
            case "stream" -> false;
            case "table" -> true;
            default -> throw new Usage("--as must be stream or table");
        };
        group = opt.getOrDefault("group", "key");
        if (!group.equals("key") && !group.isEmpty() && !group.startsWith("/")) {
            throw new Usage("--group must be 'key' or a JSON pointer");
        }
        op = opt.getOrDefault("op", "count");
        if (!op.equals("count") && !op.equals("sum")) throw new Usage("--op must be count or sum");
        sumField = opt.get("sum-field");
        if (sumField != null && !sumField.isEmpty() && !sumField.startsWith("/")) {
            throw new Usage("--sum-field must be a JSON pointer");
        }
        emit = opt.getOrDefault("emit", "update");
        if (!emit.equals("update") && !emit.equals("final")) throw new Usage("--emit must be update or final");
        grace = num("grace", opt.getOrDefault("grace", "0"));
        cacheBytes = num("cache-bytes", opt.getOrDefault("cache-bytes", "0"));
        window = opt.getOrDefault("window", "none");
        String[] w = window.split(":");
        windowKind = w[0];
        int want = switch (windowKind) {
            case "none" -> 1;
            case "tumbling", "sliding", "session" -> 2;
            case "hopping" -> 3;
            default -> throw new Usage("bad --window " + window);
        };
        if (w.length != want) throw new Usage("bad --window " + window);
        if (want >= 2) size = num("window", w[1]);
        advance = want == 3 ? num("window", w[2]) : size;
        if (table && !windowKind.equals("none")) throw new Usage("--as table cannot be windowed");
        if (emit.equals("final") && windowKind.equals("none")) throw new Usage("--emit final needs a window");
    }

    String need(String k) {
        String v = opt.get(k);
        if (v == null) throw new Usage("missing --" + k);
        return v;
    }

    static long num(String name, String v) {
        try {
            return Long.parseLong(v);
        } catch (NumberFormatException e) {
            throw new Usage("--" + name + ": not a number: " + v);
        }
    }

    // ---- record logic (runs inside the topology)
    String newKey(String k, String v) {
        if (group.equals("key")) return k;
        if (v == null) return null;
        JsonNode n;
        try {
            n = JSON.readTree(v);
        } catch (IOException e) {
            return null; // value is not JSON: no key
        }
        return n == null ? null : text(n.at(group));
    }

    double number(String k, String v) {
        JsonNode n;
        try {
            n = JSON.readTree(v);
        } catch (IOException e) {
            n = null;
        }
        if (n != null && sumField != null) n = n.at(sumField);
        if (n == null || !n.isNumber()) {
            throw new IllegalArgumentException("sum: value of key " + k + " is not a JSON number"
                    + (sumField == null ? "" : " at " + sumField) + ": " + v);
        }
        return n.doubleValue();
    }

    // The sentinel's group never parses its values, so the sentinel value only
    // has to route the record into that group.
    String add(String k, String v, String agg) {
        return SENTINEL.equals(k) ? agg : fmtDouble(Double.parseDouble(agg) + number(k, v));
    }

    String sub(String k, String v, String agg) {
        return SENTINEL.equals(k) ? agg : fmtDouble(Double.parseDouble(agg) - number(k, v));
    }

    String sentinelValue() {
        if (group.equals("key")) return "0";
        if (group.isEmpty()) return "\"" + SENTINEL + "\"";
        ObjectNode root = JSON.createObjectNode();
        ObjectNode cur = root;
        String[] parts = group.substring(1).split("/", -1);
        for (int i = 0; i < parts.length; i++) {
            String p = parts[i].replace("~1", "/").replace("~0", "~");
            if (i == parts.length - 1) cur.put(p, SENTINEL);
            else cur = cur.putObject(p);
        }
        return root.toString();
    }

    // ---- topology
    @SuppressWarnings({"unchecked", "rawtypes"})
    void run(String[] args) throws Exception {
        if (java.util.Arrays.asList(args).contains("--join")) {
            new Join().run(args);
            return;
        }
        parseArgs(args);
        boolean count = op.equals("count");
        boolean fin = emit.equals("final");
        Initializer<String> init = () -> "0";
        Aggregator<String, String, String> adder = this::add;
        StreamsBuilder b = new StreamsBuilder();
        KTable result;
        if (table) {
            KGroupedTable<String, String> g = b.table(source, Consumed.with(S, S))
                    .groupBy((k, v) -> KeyValue.pair(newKey(k, v), v), Grouped.with(S, S));
            result = count ? g.count()
                    : g.aggregate(init, adder, this::sub, Materialized.with(S, S));
        } else {
            KStream<String, String> s = b.stream(source, Consumed.with(S, S));
            KGroupedStream<String, String> g = group.equals("key")
                    ? s.groupByKey(Grouped.with(S, S))
                    : s.groupBy(this::newKey, Grouped.with(S, S));
            Duration gr = Duration.ofMillis(grace), sz = Duration.ofMillis(size);
            switch (windowKind) {
                case "none" -> result = count ? g.count() : g.aggregate(init, adder, Materialized.with(S, S));
                case "session" -> {
                    SessionWindowedKStream<String, String> w =
                            g.windowedBy(SessionWindows.ofInactivityGapAndGrace(sz, gr));
                    if (fin) w = w.emitStrategy(EmitStrategy.onWindowClose());
                    result = count ? w.count() : w.aggregate(init, adder,
                            (k, a1, a2) -> SENTINEL.equals(k) ? a1
                                    : fmtDouble(Double.parseDouble(a1) + Double.parseDouble(a2)),
                            Materialized.with(S, S));
                }
                default -> {
                    TimeWindowedKStream<String, String> w = windowKind.equals("sliding")
                            ? g.windowedBy(SlidingWindows.ofTimeDifferenceAndGrace(sz, gr))
                            : g.windowedBy(TimeWindows.ofSizeAndGrace(sz, gr).advanceBy(Duration.ofMillis(advance)));
                    if (fin) w = w.emitStrategy(EmitStrategy.onWindowClose());
                    result = count ? w.count() : w.aggregate(init, adder, Materialized.with(S, S));
                }
            }
        }
        Serde keySerde = switch (windowKind) {
            case "none" -> S;
            case "session" -> WindowedSerdes.sessionWindowedSerdeFrom(String.class);
            default -> WindowedSerdes.timeWindowedSerdeFrom(String.class, size);
        };
        Serde valSerde = count ? Serdes.Long() : S;
        result.toStream().to(sink, Produced.with(keySerde, valSerde));

        Path stateDir = Files.createTempDirectory("eddy-oracle-");
        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, "oracle");
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, "dummy:9092");
        p.put(StreamsConfig.STATE_DIR_CONFIG, stateDir.toString());
        p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, Long.toString(cacheBytes));
        p.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
        p.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
        p.put(StreamsConfig.InternalConfig.EMIT_INTERVAL_MS_KSTREAMS_WINDOWED_AGGREGATION, 0L);

        PrintStream out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
        try (TopologyTestDriver ttd = new TopologyTestDriver(b.build(), p, Instant.EPOCH)) {
            TestInputTopic<String, String> in = ttd.createInputTopic(source,
                    S.serializer(), S.serializer());
            TestOutputTopic outTopic = ttd.createOutputTopic(sink,
                    (Deserializer) keySerde.deserializer(), (Deserializer) valSerde.deserializer());
            String sentinel = sentinelValue();
            eachInputLine(opt.get("input"), (no, n) -> {
                if (n.has("advance_time")) {
                    in.pipeInput(new TestRecord<>(SENTINEL, sentinel, Instant.ofEpochMilli(n.get("advance_time").asLong())));
                    return;
                }
                String topic = n.hasNonNull("topic") ? n.get("topic").asText() : source;
                if (!topic.equals(source)) throw new Usage("input line " + no + ": topic '" + topic + "' is not --source");
                long ts = n.hasNonNull("timestamp") ? n.get("timestamp").asLong() : 0L;
                in.pipeInput(new TestRecord<>(text(n.get("key")), text(n.get("value")), Instant.ofEpochMilli(ts)));
            });
            while (!outTopic.isEmpty()) {
                TestRecord rec = outTopic.readRecord();
                Object k = rec.key();
                String key;
                if (k instanceof Windowed<?> wk) {
                    if (SENTINEL.equals(wk.key())) continue;
                    key = "{\"key\":" + renderKey((String) wk.key()) + ",\"start\":" + wk.window().start()
                            + ",\"end\":" + wk.window().end() + "}";
                } else {
                    if (SENTINEL.equals(k)) continue;
                    key = renderKey((String) k);
                }
                Object v = rec.value();
                out.println("{\"topic\":" + quote(sink) + ",\"key\":" + key + ",\"value\":"
                        + renderValue(v == null ? null : v.toString()) + ",\"timestamp\":" + rec.timestamp() + "}");
            }
        } finally {
            out.flush();
            try (Stream<Path> walk = Files.walk(stateDir)) {
                walk.sorted(Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
            } catch (IOException ignored) {
                // best effort
            }
        }
    }

    // ---- joins (see tests/oracle/README.md, "Joins")

    /**
     * One join (stream-stream, stream-table, stream-globaltable, table-table or foreign-key)
     * with the "pair" joiner.
     */
    static final class Join {
        final Map<String, String> opt = new HashMap<>();
        String shape, kind, left, right, sink, foreignKey;
        long before, after, grace, cacheBytes, history;

        void parseArgs(String[] args) {
            for (int i = 0; i < args.length; i += 2) {
                String a = args[i];
                if (!a.startsWith("--") || i + 1 >= args.length) {
                    throw new Usage("expected --name value pairs, got '" + a + "'");
                }
                opt.put(a.substring(2), args[i + 1]);
            }
            for (String k : opt.keySet()) {
                if (!java.util.List.of("input", "join", "left", "right", "sink", "window", "cache-bytes", "history",
                        "foreign-key").contains(k)) {
                    throw new Usage("unknown option --" + k + " with --join");
                }
            }
            need("input");
            sink = need("sink");
            left = need("left");
            right = need("right");
            if (left.equals(right)) throw new Usage("--left and --right must be different topics");
            if (left.equals(sink) || right.equals(sink)) throw new Usage("--sink must differ from --left and --right");
            String j = need("join");
            String[] p = j.split(":");
            if (p.length != 2) throw new Usage("bad --join " + j);
            shape = p[0];
            kind = p[1];
            java.util.List<String> kinds = switch (shape) {
                case "stream-stream", "table-table" -> java.util.List.of("inner", "left", "outer");
                case "stream-table", "stream-globaltable", "foreign-key" -> java.util.List.of("inner", "left");
                default -> throw new Usage("bad --join " + j + ": the shape must be stream-stream, stream-table, "
                        + "stream-globaltable, table-table or foreign-key");
            };
            if (!kinds.contains(kind)) throw new Usage("bad --join " + j + ": " + shape + " joins are " + String.join("|", kinds));
            cacheBytes = num("cache-bytes", opt.getOrDefault("cache-bytes", "0"));
            if (opt.containsKey("history") && !shape.equals("stream-table")) {
                throw new Usage("--history (a versioned table) is only for --join stream-table");
            }
            history = opt.containsKey("history") ? num("history", opt.get("history")) : -1;
            foreignKey = opt.get("foreign-key");
            if (shape.equals("foreign-key")) {
                if (foreignKey == null) throw new Usage("--join foreign-key needs --foreign-key /json/pointer");
                if (!foreignKey.isEmpty() && !foreignKey.startsWith("/")) {
                    throw new Usage("--foreign-key must be a JSON pointer");
                }
            } else if (foreignKey != null) {
                throw new Usage("--foreign-key is only for --join foreign-key");
            }
            String w = opt.get("window");
            if (shape.equals("stream-stream")) {
                if (w == null) throw new Usage("--join stream-stream needs --window before:MS,after:MS,grace:MS");
                Map<String, Long> parts = new HashMap<>();
                for (String part : w.split(",", -1)) {
                    String[] kv = part.split(":", -1);
                    if (kv.length != 2 || !java.util.List.of("before", "after", "grace").contains(kv[0])
                            || parts.put(kv[0], num("window", kv[1])) != null) {
                        throw new Usage("bad --window " + w + ": want before:MS,after:MS,grace:MS");
                    }
                }
                if (parts.size() != 3) throw new Usage("bad --window " + w + ": want before:MS,after:MS,grace:MS");
                before = parts.get("before");
                after = parts.get("after");
                grace = parts.get("grace");
                if (before + after < 0) throw new Usage("bad --window " + w + ": before + after must not be negative");
                if (grace < 0) throw new Usage("bad --window " + w + ": grace must not be negative");
            } else if (w != null) {
                throw new Usage("--window is only for --join stream-stream");
            }
        }

        String need(String k) {
            String v = opt.get(k);
            if (v == null) throw new Usage("missing --" + k);
            return v;
        }

        /** The "pair" joiner: {"left":L,"right":R}, each side rendered like an output value. */
        static String pair(String l, String r) {
            return "{\"left\":" + renderValue(l) + ",\"right\":" + renderValue(r) + "}";
        }

        /**
         * The foreign key of a left value: its JSON at --foreign-key, a string's text or other
         * JSON's compact text. A missing pointer, JSON null, a null value or a value that is
         * not JSON give null.
         */
        String fk(String v) {
            if (v == null) return null;
            JsonNode n = parse(v);
            return n == null ? null : text(n.at(foreignKey));
        }

        JoinWindows windows() {
            JoinWindows w = JoinWindows.ofTimeDifferenceAndGrace(Duration.ZERO, Duration.ofMillis(grace));
            // Each step must keep before + after >= 0: set the non-negative bound first.
            return after >= 0
                    ? w.after(Duration.ofMillis(after)).before(Duration.ofMillis(before))
                    : w.before(Duration.ofMillis(before)).after(Duration.ofMillis(after));
        }

        void run(String[] args) throws Exception {
            parseArgs(args);
            StreamsBuilder b = new StreamsBuilder();
            ValueJoiner<String, String, String> joiner = Join::pair;
            Consumed<String, String> c = Consumed.with(S, S);
            switch (shape) {
                case "stream-stream" -> {
                    KStream<String, String> l = b.stream(left, c), r = b.stream(right, c);
                    StreamJoined<String, String, String> sj = StreamJoined.with(S, S, S);
                    JoinWindows w = windows();
                    KStream<String, String> out = switch (kind) {
                        case "inner" -> l.join(r, joiner, w, sj);
                        case "left" -> l.leftJoin(r, joiner, w, sj);
                        default -> l.outerJoin(r, joiner, w, sj);
                    };
                    out.to(sink, Produced.with(S, S));
                }
                case "stream-table" -> {
                    KStream<String, String> l = b.stream(left, c);
                    // --history: a versioned table (KIP-914) keeping that much history.
                    KTable<String, String> r = history < 0 ? b.table(right, c)
                            : b.table(right, c, Materialized.<String, String>as(
                                    org.apache.kafka.streams.state.Stores.persistentVersionedKeyValueStore(
                                            "versioned", Duration.ofMillis(history)))
                                    .withKeySerde(S).withValueSerde(S));
                    Joined<String, String, String> jd = Joined.with(S, S, S);
                    (kind.equals("inner") ? l.join(r, joiner, jd) : l.leftJoin(r, joiner, jd))
                            .to(sink, Produced.with(S, S));
                }
                case "stream-globaltable" -> {
                    KStream<String, String> l = b.stream(left, c);
                    GlobalKTable<String, String> r = b.globalTable(right, c);
                    KeyValueMapper<String, String, String> byKey = (k, v) -> k;
                    (kind.equals("inner") ? l.join(r, byKey, joiner) : l.leftJoin(r, byKey, joiner))
                            .to(sink, Produced.with(S, S));
                }
                case "foreign-key" -> {
                    // KIP-213: the right table is keyed by the foreign key taken from each left value.
                    KTable<String, String> l = b.table(left, c), r = b.table(right, c);
                    java.util.function.Function<String, String> byFk = this::fk;
                    KTable<String, String> out = kind.equals("inner")
                            ? l.join(r, byFk, joiner)
                            : l.leftJoin(r, byFk, joiner);
                    out.toStream().to(sink, Produced.with(S, S));
                }
                default -> {
                    KTable<String, String> l = b.table(left, c), r = b.table(right, c);
                    KTable<String, String> out = switch (kind) {
                        case "inner" -> l.join(r, joiner);
                        case "left" -> l.leftJoin(r, joiner);
                        default -> l.outerJoin(r, joiner);
                    };
                    out.toStream().to(sink, Produced.with(S, S));
                }
            }

            Path stateDir = Files.createTempDirectory("eddy-oracle-");
            Properties p = new Properties();
            p.put(StreamsConfig.APPLICATION_ID_CONFIG, "oracle");
            p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, "dummy:9092");
            p.put(StreamsConfig.STATE_DIR_CONFIG, stateDir.toString());
            p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, Long.toString(cacheBytes));
            p.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
            p.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
            if (shape.equals("stream-stream")) {
                p.put(StreamsConfig.InternalConfig.EMIT_INTERVAL_MS_KSTREAMS_OUTER_JOIN_SPURIOUS_RESULTS_FIX, 0L);
            }

            PrintStream out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
            try (TopologyTestDriver ttd = new TopologyTestDriver(b.build(), p, Instant.EPOCH)) {
                Map<String, TestInputTopic<String, String>> in = Map.of(
                        left, ttd.createInputTopic(left, S.serializer(), S.serializer()),
                        right, ttd.createInputTopic(right, S.serializer(), S.serializer()));
                TestOutputTopic<String, String> outTopic = ttd.createOutputTopic(sink, S.deserializer(), S.deserializer());
                eachInputLine(opt.get("input"), (no, n) -> {
                    if (n.has("advance_time")) {
                        in.get(left).pipeInput(new TestRecord<>(SENTINEL, "0",
                                Instant.ofEpochMilli(n.get("advance_time").asLong())));
                        return;
                    }
                    if (!n.hasNonNull("topic")) throw new Usage("input line " + no + ": a join input record needs a topic");
                    String topic = n.get("topic").asText();
                    TestInputTopic<String, String> to = in.get(topic);
                    if (to == null) throw new Usage("input line " + no + ": topic '" + topic + "' is neither --left nor --right");
                    long ts = n.hasNonNull("timestamp") ? n.get("timestamp").asLong() : 0L;
                    to.pipeInput(new TestRecord<>(text(n.get("key")), text(n.get("value")), Instant.ofEpochMilli(ts)));
                });
                while (!outTopic.isEmpty()) {
                    TestRecord<String, String> rec = outTopic.readRecord();
                    if (SENTINEL.equals(rec.key())) continue;
                    out.println("{\"topic\":" + quote(sink) + ",\"key\":" + renderKey(rec.key()) + ",\"value\":"
                            + renderValue(rec.value()) + ",\"timestamp\":" + rec.timestamp() + "}");
                }
            } finally {
                out.flush();
                try (Stream<Path> walk = Files.walk(stateDir)) {
                    walk.sorted(Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
                } catch (IOException ignored) {
                    // best effort
                }
            }
        }
    }

    // ---- input

    /** What is done with one input line: its number and its JSON object. */
    interface InputLine {
        void accept(int no, JsonNode n) throws Usage;
    }

    /** Reads the input file: every line but blank and `#` ones, each a JSON object. */
    static void eachInputLine(String file, InputLine each) throws IOException, Usage {
        try (BufferedReader r = Files.newBufferedReader(Path.of(file), StandardCharsets.UTF_8)) {
            String line;
            int no = 0;
            while ((line = r.readLine()) != null) {
                no++;
                String t = line.strip();
                if (t.isEmpty() || t.startsWith("#")) continue;
                JsonNode n;
                try {
                    n = JSON.readTree(t);
                } catch (IOException e) {
                    throw new Usage("input line " + no + ": bad JSON: " + e.getMessage().lines().findFirst().orElse(""));
                }
                if (n == null || !n.isObject()) throw new Usage("input line " + no + ": not a JSON object");
                each.accept(no, n);
            }
        }
    }

    // ---- JSON text helpers (formatted the way Rust's serde_json prints)

    /** Input key/value/pointer target: a string's text, other JSON's compact text, null/missing = null. */
    static String text(JsonNode n) {
        if (n == null || n.isNull() || n.isMissingNode()) return null;
        return n.isTextual() ? n.textValue() : compact(n);
    }

    static JsonNode parse(String s) {
        try {
            return JSON.readTree(s);
        } catch (IOException e) {
            return null;
        }
    }

    static String renderKey(String k) {
        if (k == null) return "null";
        JsonNode n = parse(k);
        return n != null && (n.isObject() || n.isArray()) ? compact(n) : quote(k);
    }

    static String renderValue(String v) {
        if (v == null) return "null";
        JsonNode n = parse(v);
        return n != null && (n.isNumber() || n.isObject() || n.isArray() || n.isBoolean()) ? compact(n) : quote(v);
    }

    static String compact(JsonNode n) {
        StringBuilder sb = new StringBuilder();
        write(n, sb);
        return sb.toString();
    }

    static void write(JsonNode n, StringBuilder sb) {
        if (n.isObject()) {
            sb.append('{');
            boolean first = true;
            for (Map.Entry<String, JsonNode> e : n.properties()) {
                if (!first) sb.append(',');
                first = false;
                sb.append(quote(e.getKey())).append(':');
                write(e.getValue(), sb);
            }
            sb.append('}');
        } else if (n.isArray()) {
            sb.append('[');
            for (int i = 0; i < n.size(); i++) {
                if (i > 0) sb.append(',');
                write(n.get(i), sb);
            }
            sb.append(']');
        } else if (n.isTextual()) {
            sb.append(quote(n.textValue()));
        } else if (n.isIntegralNumber()) {
            sb.append(n.bigIntegerValue());
        } else if (n.isNumber()) {
            sb.append(fmtDouble(n.doubleValue()));
        } else {
            sb.append(n.toString()); // true, false, null
        }
    }

    static String quote(String s) {
        StringBuilder sb = new StringBuilder("\"");
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                case '\b' -> sb.append("\\b");
                case '\f' -> sb.append("\\f");
                default -> {
                    if (c < 0x20) sb.append(String.format("\\u%04x", (int) c));
                    else sb.append(c);
                }
            }
        }
        return sb.append('"').toString();
    }

    /**
     * An f64 as serde_json 1.0.154 (zmij) prints it: the shortest digits that
     * round-trip, plain when the leading digit's exponent is in [-5, 15]
     * (`7.0`, `0.00001`), else scientific (`1e+16`, `1.5e-7`).
     */
    static String fmtDouble(double d) {
        if (Double.isNaN(d) || Double.isInfinite(d)) return "null";
        if (d == 0) return 1 / d < 0 ? "-0.0" : "0.0";
        BigDecimal exact = new BigDecimal(d), bd = exact;
        for (int prec = 1; prec <= 17; prec++) {
            bd = exact.round(new MathContext(prec, RoundingMode.HALF_EVEN));
            if (bd.doubleValue() == d) break;
        }
        bd = bd.stripTrailingZeros();
        String digits = bd.unscaledValue().abs().toString();
        int len = digits.length(), k = -bd.scale(), kk = len + k;
        StringBuilder sb = new StringBuilder(d < 0 ? "-" : "");
        if (k >= 0 && kk <= 16) {
            sb.append(digits).append("0".repeat(k)).append(".0");
        } else if (kk > 0 && kk <= 16) {
            sb.append(digits, 0, kk).append('.').append(digits, kk, len);
        } else if (kk > -5 && kk <= 0) {
            sb.append("0.").append("0".repeat(-kk)).append(digits);
        } else if (len == 1) {
            sb.append(digits).append(kk > 0 ? "e+" : "e").append(kk - 1);
        } else {
            sb.append(digits, 0, 1).append('.').append(digits, 1, len).append(kk > 0 ? "e+" : "e").append(kk - 1);
        }
        return sb.toString();
    }
}
