package io.capprune.core.checkpoint;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.capprune.core.tensor.HalfPrecision;
import io.capprune.core.tensor.HostTensor;
import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.ShortBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Predicate;

/**
 * The safetensors format (huggingface/safetensors), read and written in plain Java: an 8-byte
 * little-endian header length N, N bytes of JSON header, then the data section that the header's
 * {@code data_offsets} index. The file is untrusted input: every check of the reference Rust
 * implementation is made here, and every error names the file and the tensor.
 *
 * <p>Reading streams the data section once in offset order, so it works from any {@link
 * InputStream} (a Hadoop {@code FSDataInputStream}, an S3 object) without seeking.
 */
public final class Safetensors {

  /** The reference implementation's limit; a larger header is refused before it is allocated. */
  public static final long MAX_HEADER_BYTES = 100_000_000L;

  public static final String METADATA_KEY = "__metadata__";

  // Large enough for bulk conversion to pay off, small enough to stay in cache; a multiple of 8 so
  // that no element of any dtype straddles two chunks.
  private static final int CHUNK_BYTES = 1 << 20;

  private static final ObjectMapper JSON =
      new ObjectMapper()
          .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
          .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

  private Safetensors() {}

  /**
   * Every dtype the format defines, so that sizes can be checked even for tensors we cannot decode.
   */
  public enum Dtype {
    BOOL(1),
    U8(1),
    I8(1),
    F8_E5M2(1),
    F8_E4M3(1),
    I16(2),
    U16(2),
    F16(2),
    BF16(2),
    I32(4),
    U32(4),
    F32(4),
    F64(8),
    I64(8),
    U64(8);

    public final int bytes;

    Dtype(int bytes) {
      this.bytes = bytes;
    }

    /** Whether this reader turns the dtype into float32. */
    public boolean decodable() {
      return this == F32 || this == F16 || this == BF16;
    }
  }

  /** One header entry; offsets are relative to the start of the data section. */
  public record TensorInfo(String name, Dtype dtype, int[] shape, long begin, long end) {
    public long numel() {
      long n = 1;
      for (int d : shape) {
        n *= d; // overflow was excluded when the header was parsed
      }
      return n;
    }

    public long byteSize() {
      return end - begin;
    }

    @Override
    public String toString() {
      return name + " " + dtype + Arrays.toString(shape) + " [" + begin + ", " + end + ")";
    }
  }

  /**
   * A parsed and validated header.
   *
   * @param tensors in header order
   * @param headerBytes N, the JSON header length including padding
   * @param dataBytes length of the data section implied by the offsets
   */
  public record Header(
      Map<String, TensorInfo> tensors,
      Map<String, String> metadata,
      long headerBytes,
      long dataBytes) {
    public long fileBytes() {
      return 8 + headerBytes + dataBytes;
    }
  }

  /** The decoded (included) tensors in header order, and the header they came from. */
  public record Contents(LinkedHashMap<String, HostTensor> tensors, Header header) {
    /** The {@code __metadata__} strings. */
    public Map<String, String> metadata() {
      return header.metadata();
    }
  }

  // ------------------------------------------------------------------------------------- reading

  public static Contents read(Path file) throws IOException {
    return read(file, name -> true);
  }

  public static Contents read(Path file, Predicate<String> include) throws IOException {
    try (InputStream in = Files.newInputStream(file)) {
      return read(in, Files.size(file), file.toString(), include);
    }
  }

  /**
   * @param length the file size when known (enables the up-front bounds checks), or -1
   * @param source the file name or URI, for error messages
   */
  public static Contents read(InputStream in, long length, String source) throws IOException {
    return read(in, length, source, name -> true);
  }

  /**
   * Reads the tensors that {@code include} accepts; the others are still checked for size and read
   * past, so a truncated or trailing-garbage file is detected either way. A tensor of a dtype this
   * reader cannot decode is an error only when it is included.
   */
  public static Contents read(InputStream in, long length, String source, Predicate<String> include)
      throws IOException {
    InputStream bin = in instanceof BufferedInputStream ? in : new BufferedInputStream(in, 1 << 16);
    Header header = readHeader(bin, length, source);
    for (TensorInfo t : header.tensors().values()) {
      if (include.test(t.name())) {
        if (!t.dtype().decodable()) {
          throw new CheckpointException(
              source
                  + ": tensor '"
                  + t.name()
                  + "': unsupported dtype "
                  + t.dtype()
                  + " (this reader decodes F32, F16 and BF16)");
        }
        if (t.numel() > Integer.MAX_VALUE - 8) {
          throw new CheckpointException(
              source
                  + ": tensor '"
                  + t.name()
                  + "': "
                  + t.numel()
                  + " elements do not fit a Java array");
        }
      }
    }
    Map<String, float[]> decoded = new HashMap<>();
    byte[] chunk = new byte[CHUNK_BYTES];
    long position = 0;
    for (TensorInfo t : byOffset(header.tensors().values())) {
      // validate() guarantees contiguous coverage, so the stream is always at t.begin here.
      float[] dst = include.test(t.name()) ? new float[(int) t.numel()] : null;
      long remaining = t.byteSize();
      int out = 0;
      while (remaining > 0) {
        int n = (int) Math.min(chunk.length, remaining);
        int got = bin.readNBytes(chunk, 0, n);
        if (got < n) {
          throw new CheckpointException(
              source
                  + ": truncated: tensor '"
                  + t.name()
                  + "' needs data bytes ["
                  + t.begin()
                  + ", "
                  + t.end()
                  + ") but the file ends at data byte "
                  + (position + got)
                  + " (file size "
                  + (8 + header.headerBytes() + position + got)
                  + ")");
        }
        if (dst != null) {
          out += decode(t.dtype(), chunk, n, dst, out);
        }
        position += n;
        remaining -= n;
      }
      if (dst != null) {
        decoded.put(t.name(), dst);
      }
    }
    if (length < 0 && bin.read() != -1) {
      throw new CheckpointException(
          source
              + ": data after the last tensor: the header's offsets cover "
              + header.dataBytes()
              + " data bytes but the file is longer");
    }
    LinkedHashMap<String, HostTensor> tensors = new LinkedHashMap<>();
    for (TensorInfo t : header.tensors().values()) {
      float[] data = decoded.get(t.name());
      if (data != null) {
        tensors.put(t.name(), new HostTensor(t.shape().clone(), data));
      }
    }
    return new Contents(tensors, header);
  }

  /**
   * Reads and validates the 8-byte length and the JSON header, leaving the stream at the data
   * section.
   */
  public static Header readHeader(InputStream in, long length, String source) throws IOException {
    byte[] lenBytes = in.readNBytes(8);
    if (lenBytes.length < 8) {
      throw new CheckpointException(
          source
              + ": truncated: "
              + lenBytes.length
              + " bytes, too short for the 8-byte header length");
    }
    long n = ByteBuffer.wrap(lenBytes).order(ByteOrder.LITTLE_ENDIAN).getLong();
    if (n < 0 || n > MAX_HEADER_BYTES) {
      throw new CheckpointException(
          source
              + ": header length "
              + Long.toUnsignedString(n)
              + " exceeds the limit of "
              + MAX_HEADER_BYTES
              + " bytes (corrupt or not a safetensors file)");
    }
    if (length >= 0 && n > length - 8) {
      throw new CheckpointException(
          source
              + ": header length "
              + n
              + " is larger than the "
              + (length - 8)
              + " bytes after the length field (file size "
              + length
              + ")");
    }
    byte[] headerBytes = in.readNBytes((int) n);
    if (headerBytes.length < n) {
      throw new CheckpointException(
          source
              + ": truncated: header length is "
              + n
              + " but the file ends after "
              + headerBytes.length
              + " header bytes");
    }
    Header header = parseHeader(headerBytes, source);
    if (length >= 0 && header.fileBytes() != length) {
      long dataInFile = length - 8 - n;
      if (dataInFile < header.dataBytes()) {
        TensorInfo cut = null;
        for (TensorInfo t : byOffset(header.tensors().values())) {
          if (t.end() > dataInFile) {
            cut = t;
            break;
          }
        }
        throw new CheckpointException(
            source
                + ": truncated or corrupt: tensor '"
                + cut.name()
                + "': data_offsets ["
                + cut.begin()
                + ", "
                + cut.end()
                + ") are out of bounds of the "
                + dataInFile
                + "-byte data section (file size "
                + length
                + ", the header implies "
                + header.fileBytes()
                + ")");
      }
      throw new CheckpointException(
          source
              + ": data after the last tensor: the header's offsets cover "
              + header.dataBytes()
              + " data bytes but the file has "
              + dataInFile);
    }
    return header;
  }

  static Header parseHeader(byte[] bytes, String source) {
    String text;
    try {
      text =
          StandardCharsets.UTF_8
              .newDecoder()
              .onMalformedInput(CodingErrorAction.REPORT)
              .onUnmappableCharacter(CodingErrorAction.REPORT)
              .decode(ByteBuffer.wrap(bytes))
              .toString();
    } catch (CharacterCodingException e) {
      throw new CheckpointException(
          source + ": header is not valid UTF-8 (corrupt or not a safetensors file)");
    }
    if (!text.startsWith("{")) {
      throw new CheckpointException(
          source + ": header is not a JSON object: it starts with " + quoteStart(text));
    }
    JsonNode root;
    try {
      root = JSON.readTree(text);
    } catch (IOException e) {
      throw new CheckpointException(source + ": header is not valid JSON: " + jsonMessage(e), e);
    }
    if (root == null || !root.isObject()) {
      throw new CheckpointException(source + ": header is not a JSON object");
    }
    Map<String, String> metadata = Map.of();
    LinkedHashMap<String, TensorInfo> tensors = new LinkedHashMap<>();
    for (Map.Entry<String, JsonNode> e : root.properties()) {
      if (e.getKey().equals(METADATA_KEY)) {
        metadata = parseMetadata(e.getValue(), source);
      } else {
        tensors.put(e.getKey(), parseTensor(e.getKey(), e.getValue(), source));
      }
    }
    long dataBytes = validateLayout(tensors.values(), source);
    return new Header(Collections.unmodifiableMap(tensors), metadata, bytes.length, dataBytes);
  }

  private static String quoteStart(String text) {
    String s = text.length() > 20 ? text.substring(0, 20) + "..." : text;
    return "'" + s.replaceAll("\\p{Cntrl}", "?") + "'";
  }

  // Jackson's own message carries a location suffix that is noise for a one-line header.
  private static String jsonMessage(IOException e) {
    return e instanceof com.fasterxml.jackson.core.JsonProcessingException j
        ? j.getOriginalMessage()
        : e.getMessage();
  }

  private static Map<String, String> parseMetadata(JsonNode node, String source) {
    if (!node.isObject()) {
      throw new CheckpointException(
          source
              + ": "
              + METADATA_KEY
              + " must be an object of strings, got "
              + node.getNodeType());
    }
    LinkedHashMap<String, String> out = new LinkedHashMap<>();
    for (Map.Entry<String, JsonNode> e : node.properties()) {
      if (!e.getValue().isTextual()) {
        throw new CheckpointException(
            source
                + ": "
                + METADATA_KEY
                + " key '"
                + e.getKey()
                + "' must be a string, got "
                + e.getValue().getNodeType());
      }
      out.put(e.getKey(), e.getValue().asText());
    }
    return Collections.unmodifiableMap(out);
  }

  private static final Set<String> TENSOR_KEYS = Set.of("dtype", "shape", "data_offsets");

  private static TensorInfo parseTensor(String name, JsonNode node, String source) {
    String where = source + ": tensor '" + name + "'";
    if (name.isEmpty()) {
      throw new CheckpointException(source + ": a tensor has an empty name");
    }
    if (!node.isObject()) {
      throw new CheckpointException(
          where + ": expected {dtype, shape, data_offsets}, got " + node.getNodeType());
    }
    for (Iterator<String> keys = node.fieldNames(); keys.hasNext(); ) {
      String k = keys.next();
      if (!TENSOR_KEYS.contains(k)) {
        throw new CheckpointException(where + ": unexpected key '" + k + "'");
      }
    }
    JsonNode dtypeNode = node.get("dtype");
    if (dtypeNode == null || !dtypeNode.isTextual()) {
      throw new CheckpointException(where + ": missing or non-string 'dtype'");
    }
    Dtype dtype;
    try {
      dtype = Dtype.valueOf(dtypeNode.asText());
    } catch (IllegalArgumentException e) {
      throw new CheckpointException(
          where
              + ": unsupported dtype '"
              + dtypeNode.asText()
              + "' (known: "
              + Arrays.toString(Dtype.values())
              + ")");
    }
    JsonNode shapeNode = node.get("shape");
    if (shapeNode == null || !shapeNode.isArray()) {
      throw new CheckpointException(where + ": missing or non-array 'shape'");
    }
    int[] shape = new int[shapeNode.size()];
    long numel = 1;
    for (int i = 0; i < shape.length; i++) {
      JsonNode d = shapeNode.get(i);
      if (!d.isIntegralNumber() || !d.canConvertToInt() || d.intValue() < 0) {
        throw new CheckpointException(
            where + ": shape " + shapeNode + " must hold non-negative integers below 2^31");
      }
      shape[i] = d.intValue();
      try {
        numel = Math.multiplyExact(numel, shape[i]);
      } catch (ArithmeticException e) {
        throw new CheckpointException(
            where + ": shape " + shapeNode + " overflows the element count");
      }
    }
    long expectedBytes;
    try {
      expectedBytes = Math.multiplyExact(numel, (long) dtype.bytes);
    } catch (ArithmeticException e) {
      throw new CheckpointException(where + ": shape " + shapeNode + " overflows the byte count");
    }
    JsonNode off = node.get("data_offsets");
    if (off == null || !off.isArray() || off.size() != 2) {
      throw new CheckpointException(where + ": 'data_offsets' must be an array [begin, end]");
    }
    long[] be = new long[2];
    for (int i = 0; i < 2; i++) {
      JsonNode v = off.get(i);
      if (!v.isIntegralNumber() || !v.canConvertToLong() || v.longValue() < 0) {
        throw new CheckpointException(
            where + ": data_offsets " + off + " must be non-negative integers");
      }
      be[i] = v.longValue();
    }
    if (be[1] < be[0]) {
      throw new CheckpointException(where + ": data_offsets " + off + " end before they begin");
    }
    if (be[1] - be[0] != expectedBytes) {
      throw new CheckpointException(
          where
              + ": data_offsets "
              + off
              + " span "
              + (be[1] - be[0])
              + " bytes but "
              + dtype
              + " shape "
              + shapeNode
              + " needs "
              + numel
              + " x "
              + dtype.bytes
              + " = "
              + expectedBytes);
    }
    return new TensorInfo(name, dtype, shape, be[0], be[1]);
  }

  /**
   * The offsets must tile the data section exactly: sorted by offset, each tensor starts where the
   * previous one ended. This rules out overlaps (two tensors aliasing bytes) and gaps (hidden
   * data).
   */
  private static long validateLayout(Iterable<TensorInfo> tensors, String source) {
    long expected = 0;
    TensorInfo prev = null;
    for (TensorInfo t : byOffset(tensors)) {
      if (t.begin() < expected) {
        throw new CheckpointException(
            source
                + ": tensor '"
                + t.name()
                + "': data_offsets ["
                + t.begin()
                + ", "
                + t.end()
                + ") overlap tensor '"
                + prev.name()
                + "' ["
                + prev.begin()
                + ", "
                + prev.end()
                + ")");
      }
      if (t.begin() > expected) {
        throw new CheckpointException(
            source
                + ": tensor '"
                + t.name()
                + "': data_offsets ["
                + t.begin()
                + ", "
                + t.end()
                + ") leave data bytes ["
                + expected
                + ", "
                + t.begin()
                + ") not covered by any tensor");
      }
      expected = t.end();
      prev = t;
    }
    return expected;
  }

  private static List<TensorInfo> byOffset(Iterable<TensorInfo> tensors) {
    List<TensorInfo> sorted = new ArrayList<>();
    tensors.forEach(sorted::add);
    sorted.sort(Comparator.comparingLong(TensorInfo::begin).thenComparingLong(TensorInfo::end));
    return sorted;
  }

  /**
   * Decodes n bytes of chunk into dst starting at element {@code at}; returns the element count.
   */
  private static int decode(Dtype dtype, byte[] chunk, int n, float[] dst, int at) {
    ByteBuffer bb = ByteBuffer.wrap(chunk, 0, n).order(ByteOrder.LITTLE_ENDIAN);
    switch (dtype) {
      case F32 -> {
        FloatBuffer fb = bb.asFloatBuffer();
        int count = fb.remaining();
        fb.get(dst, at, count);
        return count;
      }
      case F16, BF16 -> {
        ShortBuffer sb = bb.asShortBuffer();
        int count = sb.remaining();
        if (dtype == Dtype.F16) {
          for (int i = 0; i < count; i++) {
            dst[at + i] = HalfPrecision.f16ToFloat(sb.get(i));
          }
        } else {
          for (int i = 0; i < count; i++) {
            dst[at + i] = HalfPrecision.bf16ToFloat(sb.get(i));
          }
        }
        return count;
      }
      default -> throw new IllegalStateException("not decodable: " + dtype);
    }
  }

  // ------------------------------------------------------------------------------------- writing

  /** The data-section size of {@code tensors} written as {@code dtype}. */
  public static long dataBytes(Map<String, HostTensor> tensors, Dtype dtype) {
    long n = 0;
    for (HostTensor t : tensors.values()) {
      n += (long) t.numel() * dtype.bytes;
    }
    return n;
  }

  public static void write(
      Path file, Map<String, HostTensor> tensors, Map<String, String> metadata, Dtype dtype)
      throws IOException {
    try (OutputStream out = Files.newOutputStream(file)) {
      write(out, tensors, metadata, dtype);
    }
  }

  /**
   * Writes a file the reference implementation loads: tensors in map order and contiguous, the JSON
   * header padded with spaces to a multiple of 8 so the data section (and, with one dtype per file,
   * every tensor) is aligned for zero-copy loaders. Does not close {@code out}.
   *
   * @param dtype F32, F16 or BF16; narrowing rounds to nearest even
   */
  public static void write(
      OutputStream out, Map<String, HostTensor> tensors, Map<String, String> metadata, Dtype dtype)
      throws IOException {
    if (!dtype.decodable()) {
      throw new IllegalArgumentException("cannot write dtype " + dtype + " (F32, F16 or BF16)");
    }
    ObjectNode header = JSON.createObjectNode();
    if (metadata != null && !metadata.isEmpty()) {
      ObjectNode m = header.putObject(METADATA_KEY);
      metadata.forEach(m::put);
    }
    long offset = 0;
    for (Map.Entry<String, HostTensor> e : tensors.entrySet()) {
      if (e.getKey().isEmpty() || e.getKey().equals(METADATA_KEY)) {
        throw new IllegalArgumentException("invalid tensor name '" + e.getKey() + "'");
      }
      long bytes = (long) e.getValue().numel() * dtype.bytes;
      ObjectNode t = header.putObject(e.getKey());
      t.put("dtype", dtype.name());
      var shape = t.putArray("shape");
      for (int d : e.getValue().shape()) {
        shape.add(d);
      }
      t.putArray("data_offsets").add(offset).add(offset + bytes);
      offset += bytes;
    }
    byte[] json = JSON.writeValueAsBytes(header);
    int padded = (json.length + 7) / 8 * 8;
    if (padded > MAX_HEADER_BYTES) {
      throw new IllegalArgumentException(
          "header of " + padded + " bytes exceeds " + MAX_HEADER_BYTES);
    }
    OutputStream bout = new BufferedOutputStream(out, 1 << 16);
    ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(padded);
    bout.write(len.array());
    bout.write(json);
    for (int i = json.length; i < padded; i++) {
      bout.write(' ');
    }
    byte[] chunk = new byte[CHUNK_BYTES];
    for (HostTensor t : tensors.values()) {
      encode(t.data(), dtype, chunk, bout);
    }
    bout.flush();
  }

  private static void encode(float[] data, Dtype dtype, byte[] chunk, OutputStream out)
      throws IOException {
    int perChunk = chunk.length / dtype.bytes;
    for (int start = 0; start < data.length; start += perChunk) {
      int count = Math.min(perChunk, data.length - start);
      ByteBuffer bb = ByteBuffer.wrap(chunk).order(ByteOrder.LITTLE_ENDIAN);
      switch (dtype) {
        case F32 -> bb.asFloatBuffer().put(data, start, count);
        case F16 -> {
          ShortBuffer sb = bb.asShortBuffer();
          for (int i = 0; i < count; i++) {
            sb.put(i, HalfPrecision.floatToF16(data[start + i]));
          }
        }
        case BF16 -> {
          ShortBuffer sb = bb.asShortBuffer();
          for (int i = 0; i < count; i++) {
            sb.put(i, HalfPrecision.floatToBf16(data[start + i]));
          }
        }
        default -> throw new IllegalStateException(dtype.name());
      }
      out.write(chunk, 0, count * dtype.bytes);
    }
  }
}
