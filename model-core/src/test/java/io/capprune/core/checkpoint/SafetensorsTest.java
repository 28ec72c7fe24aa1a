package io.capprune.core.checkpoint;

import static io.capprune.core.checkpoint.TinyCheckpoints.file;
import static io.capprune.core.checkpoint.TinyCheckpoints.floats;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.capprune.core.checkpoint.Safetensors.Dtype;
import io.capprune.core.tensor.HalfPrecision;
import io.capprune.core.tensor.HostTensor;
import io.capprune.core.testing.TestModels;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class SafetensorsTest {

  @TempDir Path tmp;

  private static LinkedHashMap<String, HostTensor> sample() {
    Random rnd = new Random(7);
    LinkedHashMap<String, HostTensor> m = new LinkedHashMap<>();
    m.put("z.first", TestModels.randomTensor(rnd, 3, 5)); // not alphabetical: order must survive
    m.put("a.vector", TestModels.randomTensor(rnd, 7));
    m.put("scalar", new HostTensor(new int[0], new float[] {-1.25f}));
    m.put("empty", HostTensor.zeros(0, 4));
    m.put("odd", TestModels.randomTensor(rnd, 1, 3, 1)); // odd element count: F16 alignment
    m.put("big", TestModels.randomTensor(rnd, 300_000)); // spans several read chunks
    return m;
  }

  private static byte[] write(Map<String, HostTensor> t, Dtype dtype) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    Safetensors.write(out, t, Map.of("format", "pt"), dtype);
    return out.toByteArray();
  }

  private static Safetensors.Contents read(byte[] bytes) throws IOException {
    return Safetensors.read(new ByteArrayInputStream(bytes), bytes.length, "test.safetensors");
  }

  private static String readError(byte[] bytes) {
    return assertThrows(CheckpointException.class, () -> read(bytes)).getMessage();
  }

  @ParameterizedTest
  @EnumSource(names = {"F32", "F16", "BF16"})
  void roundTripKeepsNamesOrderShapesAndValues(Dtype dtype) throws IOException {
    LinkedHashMap<String, HostTensor> in = sample();
    Path f = tmp.resolve("x.safetensors");
    Safetensors.write(f, in, Map.of("format", "pt", "note", "ünïcode"), dtype);
    Safetensors.Contents c = Safetensors.read(f);
    assertEquals(List.copyOf(in.keySet()), List.copyOf(c.tensors().keySet()));
    assertEquals(Map.of("format", "pt", "note", "ünïcode"), c.metadata());
    for (String name : in.keySet()) {
      float[] expected = in.get(name).data();
      float[] actual = c.tensors().get(name).data();
      assertArrayEquals(in.get(name).shape(), c.tensors().get(name).shape(), name);
      for (int i = 0; i < expected.length; i++) {
        float want =
            switch (dtype) {
              case F32 -> expected[i];
              case F16 -> HalfPrecision.f16ToFloat(HalfPrecision.floatToF16(expected[i]));
              default -> HalfPrecision.bf16ToFloat(HalfPrecision.floatToBf16(expected[i]));
            };
        assertEquals(want, actual[i], 0f, name + "[" + i + "]");
        // and the narrowing error is what the format allows: 2^-11 (F16) or 2^-8 (BF16) relative
        double rel = dtype == Dtype.F32 ? 0 : dtype == Dtype.F16 ? 0x1p-11 : 0x1p-8;
        assertEquals(expected[i], actual[i], Math.abs(expected[i]) * rel + 1e-7, name);
      }
    }
    Safetensors.Header h = c.header();
    assertEquals(Files.size(f), h.fileBytes());
    assertEquals(Safetensors.dataBytes(in, dtype), h.dataBytes());
    h.tensors().values().forEach(t -> assertEquals(dtype, t.dtype()));
  }

  @Test
  void fileLayoutIsWhatTheReferenceImplementationWrites() throws IOException {
    byte[] bytes = write(sample(), Dtype.F16);
    long n = ByteBuffer.wrap(bytes, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
    assertEquals(0, n % 8, "header padded to a multiple of 8");
    String header = new String(bytes, 8, (int) n, StandardCharsets.UTF_8);
    assertTrue(
        header.startsWith(
            "{\"__metadata__\":{\"format\":\"pt\"},\"z.first\":{\"dtype\":\"F16\","
                + "\"shape\":[3,5],\"data_offsets\":[0,30]},\"a.vector\""),
        header);
    String stripped = header.stripTrailing();
    assertTrue(stripped.endsWith("}"));
    assertTrue(header.length() - stripped.length() < 8, "at most 7 padding spaces");
    assertEquals(header.substring(stripped.length()).replace(" ", ""), "");
    JsonNode json = new ObjectMapper().readTree(header);
    long end = json.get("big").get("data_offsets").get(1).asLong();
    assertEquals(bytes.length, 8 + n + end, "data section ends with the last tensor");
    // first element of the first tensor, F16 little endian, right after the header
    float first = sample().get("z.first").data()[0];
    short bits = ByteBuffer.wrap(bytes, 8 + (int) n, 2).order(ByteOrder.LITTLE_ENDIAN).getShort();
    assertEquals(HalfPrecision.floatToF16(first), bits);
  }

  @Test
  void readsFromAStreamOfUnknownLength() throws IOException {
    byte[] bytes = write(sample(), Dtype.F32);
    Safetensors.Contents c = Safetensors.read(new ByteArrayInputStream(bytes), -1, "stream");
    assertArrayEquals(sample().get("big").data(), c.tensors().get("big").data());
    // truncated stream: detected when the data runs out, naming the tensor
    byte[] cut = Arrays.copyOf(bytes, bytes.length - 100);
    String msg =
        assertThrows(
                CheckpointException.class,
                () -> Safetensors.read(new ByteArrayInputStream(cut), -1, "stream"))
            .getMessage();
    assertTrue(msg.startsWith("stream: truncated: tensor 'big'"), msg);
    // trailing garbage on a stream
    byte[] longer = Arrays.copyOf(bytes, bytes.length + 3);
    msg =
        assertThrows(
                CheckpointException.class,
                () -> Safetensors.read(new ByteArrayInputStream(longer), -1, "stream"))
            .getMessage();
    assertTrue(msg.contains("stream: data after the last tensor"), msg);
  }

  @Test
  void excludedTensorsAreSkippedEvenWithAnUndecodableDtype() throws IOException {
    String header =
        "{\"ids\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]},"
            + "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[16,24]}}";
    byte[] data = new byte[24];
    System.arraycopy(floats(1.5f, -3f), 0, data, 16, 8);
    byte[] bytes = file(header, data);
    Safetensors.Contents c =
        Safetensors.read(
            new ByteArrayInputStream(bytes), bytes.length, "f", name -> !name.equals("ids"));
    assertEquals(List.of("w"), List.copyOf(c.tensors().keySet()));
    assertArrayEquals(new float[] {1.5f, -3f}, c.tensors().get("w").data());
    assertEquals(Dtype.I64, c.header().tensors().get("ids").dtype());
    assertEquals(
        "test.safetensors: tensor 'ids': unsupported dtype I64 (this reader decodes F32, F16 and BF16)",
        readError(bytes));
  }

  // ------------------------------------------------------------------------------ corrupt files

  @Test
  void truncatedFile() throws IOException {
    byte[] bytes = write(sample(), Dtype.F32);
    String msg = readError(Arrays.copyOf(bytes, bytes.length - 1));
    assertTrue(
        msg.startsWith("test.safetensors: truncated or corrupt: tensor 'big': data_offsets ["),
        msg);
    assertTrue(msg.contains("are out of bounds"), msg);
    assertEquals(
        "test.safetensors: truncated: 5 bytes, too short for the 8-byte header length",
        readError(Arrays.copyOf(bytes, 5)));
    assertTrue(
        readError(Arrays.copyOf(bytes, 20)).startsWith("test.safetensors: header length "),
        "header cut");
    Path f = tmp.resolve("cut.safetensors");
    Files.write(f, Arrays.copyOf(bytes, bytes.length - 4000));
    msg = assertThrows(CheckpointException.class, () -> Safetensors.read(f)).getMessage();
    assertTrue(msg.startsWith(f + ": truncated or corrupt: tensor 'big'"), msg);
  }

  @Test
  void headerLengthLargerThanFile() {
    byte[] bytes = file(1000, "{}".getBytes(StandardCharsets.UTF_8), new byte[0]);
    assertEquals(
        "test.safetensors: header length 1000 is larger than the 2 bytes after the length field"
            + " (file size 10)",
        readError(bytes));
    byte[] huge = file(Long.MAX_VALUE, new byte[0], new byte[0]);
    assertTrue(
        readError(huge)
            .contains("header length 9223372036854775807 exceeds the limit of 100000000"));
    byte[] negative = file(-1, new byte[0], new byte[0]);
    assertTrue(
        readError(negative).contains("header length 18446744073709551615 exceeds the limit"));
  }

  @Test
  void headerNotJson() {
    assertTrue(
        readError(file("{\"a\": nope}", new byte[0]))
            .startsWith("test.safetensors: header is not valid JSON: Unrecognized token 'nope'"));
    assertEquals(
        "test.safetensors: header is not a JSON object: it starts with '[1, 2]'",
        readError(file("[1, 2]", new byte[0])));
    assertEquals(
        "test.safetensors: header is not valid UTF-8 (corrupt or not a safetensors file)",
        readError(
            file(8, new byte[] {'{', (byte) 0xff, (byte) 0xfe, 0, 0, 0, 0, '}'}, new byte[0])));
    assertTrue(
        readError(
                file(
                    "{\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
                        + "\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}",
                    new byte[4]))
            .contains("Duplicate field 'a'"));
    assertEquals(
        "test.safetensors: tensor 'a': expected {dtype, shape, data_offsets}, got ARRAY",
        readError(file("{\"a\":[1]}", new byte[0])));
    assertEquals(
        "test.safetensors: __metadata__ key 'n' must be a string, got NUMBER",
        readError(file("{\"__metadata__\":{\"n\":1}}", new byte[0])));
    assertEquals(
        "test.safetensors: tensor 'a': unexpected key 'extra'",
        readError(
            file(
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4],\"extra\":1}}",
                new byte[4])));
  }

  @Test
  void offsetsOutOfBounds() {
    String header = "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}";
    assertEquals(
        "test.safetensors: truncated or corrupt: tensor 'w': data_offsets [0, 16) are out of"
            + " bounds of the 8-byte data section (file size "
            + (8 + header.length() + 8)
            + ", the header implies "
            + (8 + header.length() + 16)
            + ")",
        readError(file(header, new byte[8])));
    assertEquals(
        "test.safetensors: tensor 'w': data_offsets [-4,12] must be non-negative integers",
        readError(
            file(
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[-4,12]}}",
                new byte[16])));
    assertEquals(
        "test.safetensors: tensor 'w': data_offsets [16,0] end before they begin",
        readError(
            file(
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[16,0]}}",
                new byte[16])));
  }

  @Test
  void overlappingOffsetsAndGaps() {
    String overlap =
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
            + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}";
    assertEquals(
        "test.safetensors: tensor 'b': data_offsets [4, 12) overlap tensor 'a' [0, 8)",
        readError(file(overlap, new byte[12])));
    String gap =
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
            + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}";
    assertEquals(
        "test.safetensors: tensor 'b': data_offsets [12, 20) leave data bytes [8, 12) not covered"
            + " by any tensor",
        readError(file(gap, new byte[20])));
    String trailing = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    assertEquals(
        "test.safetensors: data after the last tensor: the header's offsets cover 8 data bytes"
            + " but the file has 12",
        readError(file(trailing, new byte[12])));
  }

  @Test
  void sizeShapeMismatch() {
    assertEquals(
        "test.safetensors: tensor 'w': data_offsets [0,8] span 8 bytes but F32 shape [3] needs"
            + " 3 x 4 = 12",
        readError(
            file("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", new byte[8])));
    assertEquals(
        "test.safetensors: tensor 'w': shape [2,-1] must hold non-negative integers below 2^31",
        readError(
            file(
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,-1],\"data_offsets\":[0,8]}}",
                new byte[8])));
    assertEquals(
        "test.safetensors: tensor 'w': shape [2147483647,2147483647,2147483647] overflows the"
            + " element count",
        readError(
            file(
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[2147483647,2147483647,"
                    + "2147483647],\"data_offsets\":[0,8]}}",
                new byte[8])));
    assertEquals(
        "test.safetensors: tensor 'w': shape [2147483647,2147483647,2] overflows the byte count",
        readError(
            file(
                "{\"w\":{\"dtype\":\"F64\",\"shape\":[2147483647,2147483647,2],\"data_offsets\":[0,8]}}",
                new byte[8])));
  }

  @Test
  void unknownDtype() {
    String msg =
        readError(
            file("{\"w\":{\"dtype\":\"Q7\",\"shape\":[2],\"data_offsets\":[0,8]}}", new byte[8]));
    assertTrue(
        msg.startsWith("test.safetensors: tensor 'w': unsupported dtype 'Q7' (known: [BOOL"), msg);
  }

  @Test
  void headerLengthMayIncludePaddingSpacesButNotOtherTrailingText() throws IOException {
    byte[] ok =
        file("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}     ", floats(2f));
    assertArrayEquals(new float[] {2f}, read(ok).tensors().get("w").data());
    String msg =
        readError(
            file("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}} x", floats(2f)));
    assertTrue(msg.startsWith("test.safetensors: header is not valid JSON"), msg);
  }
}
