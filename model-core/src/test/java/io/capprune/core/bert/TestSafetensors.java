package io.capprune.core.bert;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.capprune.core.tensor.HostTensor;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Test-only reader of F32 safetensors files (8-byte little-endian header length, JSON header, raw
 * data), so the forward pass can be checked on real weights independently of the project's
 * checkpoint reader.
 */
final class TestSafetensors {

  private TestSafetensors() {}

  static Map<String, HostTensor> readF32(Path file) throws IOException {
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
      ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
      ch.read(len, 0);
      long headerLen = len.getLong(0);
      if (headerLen <= 0 || headerLen > 100_000_000L) {
        throw new IOException(file + ": implausible header length " + headerLen);
      }
      ByteBuffer header = ByteBuffer.allocate((int) headerLen);
      ch.read(header, 8);
      JsonNode root = new ObjectMapper().readTree(header.array());
      long dataStart = 8 + headerLen;
      Map<String, HostTensor> out = new LinkedHashMap<>();
      for (Iterator<Map.Entry<String, JsonNode>> it = root.fields(); it.hasNext(); ) {
        Map.Entry<String, JsonNode> e = it.next();
        if (e.getKey().equals("__metadata__")) {
          continue;
        }
        JsonNode t = e.getValue();
        if (!t.get("dtype").asText().equals("F32")) {
          throw new IOException(file + ": tensor '" + e.getKey() + "' is " + t.get("dtype"));
        }
        int[] shape = new int[t.get("shape").size()];
        for (int i = 0; i < shape.length; i++) {
          shape[i] = t.get("shape").get(i).asInt();
        }
        long begin = t.get("data_offsets").get(0).asLong();
        long end = t.get("data_offsets").get(1).asLong();
        HostTensor h = HostTensor.zeros(shape);
        if (end - begin != 4L * h.numel()) {
          throw new IOException(
              file + ": tensor '" + e.getKey() + "' offsets do not fit its shape");
        }
        ByteBuffer buf = ByteBuffer.allocate((int) (end - begin)).order(ByteOrder.LITTLE_ENDIAN);
        while (buf.hasRemaining()) {
          if (ch.read(buf, dataStart + begin + buf.position()) < 0) {
            throw new IOException(file + ": truncated in tensor '" + e.getKey() + "'");
          }
        }
        buf.flip().asFloatBuffer().get(h.data());
        out.put(e.getKey(), h);
      }
      return out;
    }
  }
}
