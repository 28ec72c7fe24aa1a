package io.capprune.it;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.capprune.core.checkpoint.BertTensorNames;
import io.capprune.core.checkpoint.HfCheckpoint;
import io.capprune.core.checkpoint.Safetensors;
import io.capprune.core.prune.MaskComputer;
import io.capprune.core.tensor.HostTensor;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;

/** Checks of what a CAP run left in its output directory, read through the storage's own client. */
public final class RunChecks {

  private static final ObjectMapper JSON = new ObjectMapper();

  private RunChecks() {}

  /** One committed snapshot, its files verified against its marker. */
  public record Snapshot(
      long step,
      int epoch,
      boolean isFinal,
      double sparsity,
      JsonNode state,
      LinkedHashMap<String, HostTensor> tensors) {
    /** The weights the exported model must hold: weight ⊙ mask for masked matrices. */
    public LinkedHashMap<String, HostTensor> effectiveWeights() {
      LinkedHashMap<String, HostTensor> out = new LinkedHashMap<>();
      tensors.forEach(
          (name, t) -> {
            if (name.startsWith("weight/")) {
              String n = name.substring("weight/".length());
              HostTensor mask = tensors.get("mask/" + n);
              float[] w = t.data().clone();
              if (mask != null) {
                for (int i = 0; i < w.length; i++) {
                  w[i] *= mask.data()[i];
                }
              }
              out.put(n, new HostTensor(t.shape(), w));
            }
          });
      return out;
    }
  }

  /**
   * Every directory under {@code snapshots/}: it has a {@code _COMMITTED} marker, the marker lists
   * exactly the directory's other files, each with the size and SHA-256 of the bytes the storage
   * returns now, and no file of the snapshot is newer than the marker (it was written last). No
   * file carries {@code secret}. Returns the snapshots by step.
   */
  public static TreeMap<Long, Snapshot> verifySnapshots(StoredFiles files, String secret) {
    List<StoredFiles.Entry> all = files.list();
    Map<Long, List<StoredFiles.Entry>> byStep = new TreeMap<>();
    for (StoredFiles.Entry e : all) {
      String[] parts = e.path().split("/");
      if (parts.length == 3 && parts[0].equals("snapshots")) {
        byStep.computeIfAbsent(Long.parseLong(parts[1]), k -> new ArrayList<>()).add(e);
      } else if (parts[0].equals("snapshots")) {
        fail(files.describe() + ": unexpected file " + e.path() + " under snapshots/");
      }
    }
    assertFalse(byStep.isEmpty(), () -> files.describe() + " holds no snapshots: " + all);
    TreeMap<Long, Snapshot> out = new TreeMap<>();
    byStep.forEach((step, entries) -> out.put(step, verifySnapshot(files, step, entries, secret)));
    return out;
  }

  private static Snapshot verifySnapshot(
      StoredFiles files, long step, List<StoredFiles.Entry> entries, String secret) {
    String dir = "snapshots/" + step + "/";
    String where = files.describe() + dir;
    Map<String, StoredFiles.Entry> byName = new TreeMap<>();
    entries.forEach(e -> byName.put(e.path().substring(dir.length()), e));
    StoredFiles.Entry marker = byName.get("_COMMITTED");
    assertNotNull(marker, () -> where + " has no _COMMITTED marker; files " + byName.keySet());
    JsonNode listed = json(files.read(dir + "_COMMITTED"), where + "_COMMITTED").path("files");
    Set<String> listedNames = new TreeSet<>();
    listed.fieldNames().forEachRemaining(listedNames::add);
    Set<String> present = new TreeSet<>(byName.keySet());
    present.remove("_COMMITTED");
    assertEquals(
        listedNames,
        present,
        () -> where + ": _COMMITTED lists other files than the directory holds");
    assertEquals(Set.of("state.json", "state.safetensors"), listedNames, where);
    byte[] tensorBytes = null;
    JsonNode state = null;
    for (String name : listedNames) {
      byte[] bytes = files.read(dir + name);
      JsonNode expected = listed.path(name);
      assertEquals(
          expected.path("bytes").asLong(),
          bytes.length,
          () -> where + name + ": size differs from _COMMITTED");
      assertEquals(
          expected.path("bytes").asLong(),
          byName.get(name).bytes(),
          () -> where + name + ": listed size");
      assertEquals(
          expected.path("sha256").asText(),
          sha256(bytes),
          () -> where + name + ": SHA-256 differs from _COMMITTED");
      assertTrue(
          byName.get(name).modifiedMillis() <= marker.modifiedMillis(),
          () ->
              where
                  + name
                  + " was modified at "
                  + byName.get(name).modifiedMillis()
                  + ", after _COMMITTED at "
                  + marker.modifiedMillis());
      if (!secret.isEmpty()) {
        assertFalse(
            new String(bytes, StandardCharsets.ISO_8859_1).contains(secret),
            () -> where + name + " contains the S3 secret key in clear");
      }
      if (name.equals("state.json")) {
        state = json(bytes, where + name);
      } else {
        tensorBytes = bytes;
      }
    }
    assertEquals(step, state.path("step").asLong(), () -> where + "state.json: step");
    LinkedHashMap<String, HostTensor> tensors;
    try {
      tensors =
          Safetensors.read(
                  new ByteArrayInputStream(tensorBytes),
                  tensorBytes.length,
                  where + "state.safetensors")
              .tensors();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return new Snapshot(
        step,
        state.path("epoch").asInt(),
        state.path("final").asBoolean(),
        state.path("sparsity").asDouble(),
        state,
        tensors);
  }

  /**
   * The exported model (read with the project's reader {@code model}, and its weights file through
   * the storage's client) holds exactly the final snapshot's effective weights; its zeros per
   * encoder matrix are what sparsity.json reports, which is {@code int(kept * n)} kept per matrix.
   * Returns sparsity.json's overall sparsity.
   */
  public static double verifyExport(
      StoredFiles files, HfCheckpoint model, Snapshot last, double keptFraction) {
    JsonNode sparsity = json(files.read("sparsity.json"), files.describe() + "sparsity.json");
    LinkedHashMap<String, HostTensor> expected = last.effectiveWeights();
    assertEquals(
        new TreeSet<>(expected.keySet()),
        new TreeSet<>(model.tensors().keySet()),
        "tensor names of the exported model vs the final snapshot's weights");
    expected.forEach(
        (name, t) -> {
          HostTensor got = model.tensors().get(name);
          assertArrayEquals(t.shape(), got.shape(), name);
          assertArrayEquals(
              t.data(),
              got.data(),
              0f,
              () -> "exported " + name + " differs from the final snapshot");
        });

    // the raw file as the storage returns it, parsed independently of CheckpointStore
    byte[] raw = files.read("model/model.safetensors");
    LinkedHashMap<String, HostTensor> rawTensors;
    try {
      rawTensors =
          Safetensors.read(
                  new ByteArrayInputStream(raw),
                  raw.length,
                  files.describe() + "model/model.safetensors")
              .tensors();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    expected.forEach(
        (name, t) ->
            assertArrayEquals(
                t.data(),
                rawTensors.get(BertTensorNames.exported(name)).data(),
                0f,
                () -> "model.safetensors: " + BertTensorNames.exported(name)));

    long numelSum = 0;
    long keptSum = 0;
    int matrices = 0;
    for (Iterator<JsonNode> it = sparsity.path("matrices").elements(); it.hasNext(); ) {
      JsonNode m = it.next();
      String name = m.path("name").asText();
      HostTensor t = model.tensors().get(name);
      assertNotNull(t, () -> "sparsity.json names " + name + ", which the model does not hold");
      long numel = t.numel();
      long nonZero = numel - t.countZeros();
      assertEquals(m.path("numel").asLong(), numel, name);
      assertEquals(
          m.path("kept").asLong(),
          nonZero,
          () -> name + ": non-zero weights in the model vs sparsity.json");
      assertEquals(
          MaskComputer.keepCount(keptFraction, numel),
          nonZero,
          () -> name + ": kept vs int(" + keptFraction + " n)");
      numelSum += numel;
      keptSum += nonZero;
      matrices++;
    }
    assertEquals(
        model.config().numHiddenLayers() * 6, matrices, "encoder Linear matrices in sparsity.json");
    assertEquals(numelSum, sparsity.path("encoder_linear_weights").asLong());
    assertEquals(keptSum, sparsity.path("kept").asLong());
    double fromModel = 1.0 - (double) keptSum / numelSum;
    assertEquals(
        fromModel,
        sparsity.path("sparsity").asDouble(),
        1e-12,
        "sparsity.json vs zeros of the exported model");
    assertEquals(
        last.sparsity(), fromModel, 1e-12, "final snapshot's sparsity vs the exported model");
    return fromModel;
  }

  /**
   * metrics.json holds the pruned model's dev metric, equal to what the final snapshot recorded for
   * the same weights, and the teacher's.
   */
  public static JsonNode verifyMetrics(StoredFiles files, Snapshot last) {
    JsonNode metrics = json(files.read("metrics.json"), files.describe() + "metrics.json");
    assertEquals("SST2", metrics.path("task").asText(), metrics::toString);
    assertEquals(last.step(), metrics.path("pruned_step").asLong(), metrics::toString);
    double pruned = metrics.path("pruned").path("acc").asDouble(Double.NaN);
    assertTrue(pruned >= 0 && pruned <= 1, () -> "pruned accuracy " + metrics);
    assertEquals(
        last.state().path("dev").path("acc").asDouble(Double.NaN),
        pruned,
        1e-12,
        () -> "metrics.json vs the dev accuracy the final snapshot recorded: " + metrics);
    double teacher = metrics.path("teacher").path("acc").asDouble(Double.NaN);
    assertTrue(teacher >= 0 && teacher <= 1, () -> "teacher accuracy " + metrics);
    return metrics;
  }

  /** The last step metrics.jsonl recorded (the run's progress records). */
  public static long lastLoggedStep(StoredFiles files) {
    String[] lines =
        new String(files.read("metrics.jsonl"), StandardCharsets.UTF_8).strip().split("\n");
    return json(lines[lines.length - 1].getBytes(StandardCharsets.UTF_8), "metrics.jsonl")
        .path("step")
        .asLong();
  }

  public static JsonNode json(byte[] bytes, String source) {
    try {
      return JSON.readTree(bytes);
    } catch (IOException e) {
      throw new AssertionError(source + ": not JSON: " + e.getMessage(), e);
    }
  }

  public static String sha256(byte[] bytes) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
