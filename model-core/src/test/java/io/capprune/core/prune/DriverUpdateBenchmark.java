package io.capprune.core.prune;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.capprune.core.bert.BertInit;
import io.capprune.core.checkpoint.BertConfig;
import io.capprune.core.exchange.HalfBlocks;
import io.capprune.core.exchange.MaskSet;
import io.capprune.core.exchange.PackedWeights;
import io.capprune.core.exchange.WirePrecision;
import io.capprune.core.optim.LinearWarmupDecay;
import io.capprune.core.optim.OptimizerConfig;
import io.capprune.core.tensor.HostTensor;
import io.capprune.core.testing.TestModels;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The driver's part of a step on a BERT-base-sized state (12 layers, hidden 768, FFN 3072, vocab
 * 30522: 109.5 M parameters, embeddings frozen, 85 M prunable in 72 matrices) in the middle of the
 * sparsity ramp (every step a real top-k and new masks): the update, and building the next
 * broadcast (mask bits + packed weights). Medians after 3 warm-up steps. Not a unit test: figures
 * depend on the machine.
 *
 * <ul>
 *   <li>{@code --device=java}: {@link DriverUpdate} on the heap + {@link MaskSet#of} + {@link
 *       PackedWeights#pack}, the host implementation;
 *   <li>{@code --device=cpu} / {@code --device=gpu}: {@link DeviceDriverUpdate} on that device,
 *       with {@link DeviceDriverUpdate#maskSet} and {@link DeviceDriverUpdate#pack}; the gradient's
 *       upload from a heap array is timed apart. Before the timing, a check runs the device update
 *       against DriverUpdate on small states (every method, 4 steps) and prints how far they are
 *       apart ({@code --no-check} skips it, {@code --check-only} stops after).
 * </ul>
 *
 * <pre>
 * mvn -B -o -q -pl model-core -DskipTests package test-compile
 * java -Xmx12g -cp "model-core/target/classes:model-core/target/test-classes:$(cat cp.txt)" \
 *     io.capprune.core.prune.DriverUpdateBenchmark --device=java|cpu|gpu [--runs=10]
 *     [--method=MOVEMENT|MAGNITUDE|SOFT_MOVEMENT] [--precision=fp16|fp32] [--no-check] [--check-only]
 * </pre>
 *
 * Uses no java.management (the GPU kit's runtime has only java.base, java.logging,
 * jdk.unsupported): CPU time and load come from /proc.
 */
public final class DriverUpdateBenchmark {

  public static void main(String[] args) throws Exception {
    String deviceArg = "java";
    int runs = 10;
    PruningCriterion criterion = PruningCriterion.MOVEMENT;
    WirePrecision precision = WirePrecision.FP16;
    boolean check = true;
    boolean checkOnly = false;
    for (String a : args) {
      if (a.startsWith("--device=")) {
        deviceArg = a.substring(9);
      } else if (a.startsWith("--runs=")) {
        runs = Integer.parseInt(a.substring(7));
      } else if (a.startsWith("--method=")) {
        criterion = PruningCriterion.valueOf(a.substring(9));
      } else if (a.startsWith("--precision=")) {
        precision = WirePrecision.parse("--precision", a.substring(12));
      } else if (a.equals("--no-check")) {
        check = false;
      } else if (a.equals("--check-only")) {
        checkOnly = true;
      } else {
        throw new IllegalArgumentException("unknown argument " + a);
      }
    }
    Device device =
        switch (deviceArg) {
          case "java" -> null;
          case "cpu" -> Device.cpu();
          case "gpu" -> Device.gpu();
          default -> throw new IllegalArgumentException("--device=java|cpu|gpu, got " + deviceArg);
        };
    System.out.printf(
        "device %s, cores %d, max heap %d MB, load %s%n",
        deviceArg,
        Runtime.getRuntime().availableProcessors(),
        Runtime.getRuntime().maxMemory() >> 20,
        load());
    if (device != null && (check || checkOnly)) {
      for (PruningCriterion c : PruningCriterion.values()) {
        check(device, c);
      }
    }
    if (checkOnly) {
      return;
    }
    bench(device, criterion, precision, runs);
  }

  /** Small states, 4 steps of both updates with clipping and decay active: how far apart. */
  private static void check(Device device, PruningCriterion c) {
    BertConfig wider =
        BertConfig.builder()
            .vocabSize(100)
            .hiddenSize(64)
            .numHiddenLayers(2)
            .numAttentionHeads(2)
            .intermediateSize(256)
            .build();
    for (Map<String, int[]> shapes :
        List.of(BertInit.shapes(TestModels.driverUpdateShape()), BertInit.shapes(wider))) {
      SparsitySchedule s =
          c == PruningCriterion.SOFT_MOVEMENT
              ? new SparsitySchedule(1, 0, 0, 10, 0.0, 0.6)
              : new SparsitySchedule(1, 0, 0, 10, 1.0, 0.2);
      PruningConfig p =
          new PruningConfig(c, s, false, c == PruningCriterion.SOFT_MOVEMENT ? 30 : 0, true, 0);
      OptimizerConfig o =
          new OptimizerConfig(
              0.01, 0.1, 0.01, 0.9, 0.999, 1e-8, 0.05, new LinearWarmupDecay(0, 10));
      DriverUpdate host = new DriverUpdate(p, o);
      TrainingState expected = host.initialState(TestModels.randomWeights(shapes, 0.5, 1));
      long maskDiffs = 0;
      long valueDiffs = 0;
      double maxRel = 0;
      boolean packSame = true;
      try (DeviceDriverUpdate d = new DeviceDriverUpdate(p, o, device)) {
        TrainingState actual = d.initialState(TestModels.randomWeights(shapes, 0.5, 1));
        if (c == PruningCriterion.FIXED) {
          for (TrainingState st : List.of(expected, actual)) {
            st.releaseDevice();
            for (HostTensor m : st.masks().values()) {
              for (int i = 0; i < m.numel(); i++) {
                m.data()[i] = (i * 7) % 3 == 0 ? 0f : 1f;
              }
            }
          }
        }
        for (long t = 0; t < 4; t++) {
          LinkedHashMap<String, HostTensor> g = TestModels.randomWeights(shapes, 0.3, 100 + t);
          LinkedHashMap<String, HostTensor> g2 = new LinkedHashMap<>();
          g.forEach((k, v) -> g2.put(k, v.copy()));
          host.apply(expected, g);
          d.apply(actual, g2);
          List<String> names = d.trainableNames(actual);
          MaskSet bits = d.maskSet(actual);
          PackedWeights got = d.pack(actual, names, bits, WirePrecision.FP16);
          PackedWeights want =
              PackedWeights.pack(
                  expected.weights(),
                  expected.masks(),
                  names,
                  MaskSet.of(expected.masks()),
                  WirePrecision.FP16);
          packSame &=
              MaskSet.of(expected.masks()).sameBits(bits)
                  && Arrays.equals(want.halfStream().halves(), got.halfStream().halves())
                  && Arrays.equals(want.halfStream().exponents(), got.halfStream().exponents());
        }
        maskDiffs = diffs(expected.masks(), actual.masks(), null);
        double[] rel = new double[1];
        valueDiffs =
            diffs(expected.weights(), actual.weights(), rel)
                + diffs(expected.scores(), actual.scores(), rel)
                + diffs(expected.expAvg(), actual.expAvg(), rel)
                + diffs(expected.expAvgSq(), actual.expAvgSq(), rel);
        maxRel = rel[0];
      }
      long numel = expected.weights().values().stream().mapToLong(HostTensor::numel).sum();
      System.out.printf(
          "check %s on %s, %d parameters, 4 steps: masks differ in %d entries, "
              + "weights/scores/moments in %d entries (max relative difference %.2e), fp16 "
              + "broadcast identical to the host packing of the host state: %s%n",
          c, device, numel, maskDiffs, valueDiffs, maxRel, packSame ? "yes" : "NO");
    }
  }

  private static long diffs(Map<String, HostTensor> a, Map<String, HostTensor> b, double[] maxRel) {
    long n = 0;
    for (Map.Entry<String, HostTensor> e : a.entrySet()) {
      float[] x = e.getValue().data();
      float[] y = b.get(e.getKey()).data();
      for (int i = 0; i < x.length; i++) {
        if (Float.floatToIntBits(x[i] + 0f) != Float.floatToIntBits(y[i] + 0f)) {
          n++;
          if (maxRel != null) {
            maxRel[0] = Math.max(maxRel[0], Math.abs(x[i] - y[i]) / Math.max(1e-6, Math.abs(x[i])));
          }
        }
      }
    }
    return n;
  }

  private static void bench(
      Device device, PruningCriterion criterion, WirePrecision precision, int runs) {
    Map<String, int[]> shapes = BertInit.shapes(BertConfig.builder().build()); // BERT-base
    LinkedHashMap<String, HostTensor> weights = TestModels.randomWeights(shapes, 0.02, 1);
    long total = weights.values().stream().mapToLong(HostTensor::numel).sum();
    long totalSteps = 1000;
    SparsitySchedule schedule =
        criterion == PruningCriterion.SOFT_MOVEMENT
            ? new SparsitySchedule(10, 0, 0, totalSteps, 0.0, 0.1)
            : new SparsitySchedule(10, 0, 0, totalSteps, 1.0, 0.03);
    PruningConfig pruning =
        PruningConfig.of(
            criterion, schedule, criterion == PruningCriterion.SOFT_MOVEMENT ? 550 : 0);
    OptimizerConfig optimizer = OptimizerConfig.unstructuredDefaults(10, totalSteps);
    DriverUpdate host = device == null ? new DriverUpdate(pruning, optimizer) : null;
    DeviceDriverUpdate dev =
        device == null ? null : new DeviceDriverUpdate(pruning, optimizer, device);
    TrainingState state = host != null ? host.initialState(weights) : dev.initialState(weights);
    // the middle of the ramp: step 300 of 1000 (threshold ~0.45 of the weights kept)
    for (int i = 0; i < 300; i++) {
      state.advance();
    }
    List<String> names = new ArrayList<>();
    for (String n : state.weightsOnHost().keySet()) {
      if (!state.frozen().contains(n)) {
        names.add(n);
      }
    }
    // three gradients in turn (one fixed gradient makes the scores collapse onto two values);
    // flat in the trainable order, as the job's aggregated buffer is
    List<float[]> flats = new ArrayList<>();
    List<LinkedHashMap<String, HostTensor>> maps = new ArrayList<>();
    for (long seed = 2; seed <= 4; seed++) {
      LinkedHashMap<String, HostTensor> g = TestModels.randomWeights(shapes, 1e-4, seed);
      int size = names.stream().mapToInt(n -> g.get(n).numel()).sum();
      float[] flat = new float[size];
      int o = 0;
      for (String n : names) {
        System.arraycopy(g.get(n).data(), 0, flat, o, g.get(n).numel());
        o += g.get(n).numel();
      }
      if (host != null) {
        g.keySet().retainAll(names);
        maps.add(g);
      }
      flats.add(flat);
    }
    int warmup = 3;
    double[] packMs = new double[runs];
    double[] bitsMs = new double[runs];
    double[] uploadMs = new double[runs];
    double[] updateMs = new double[runs];
    double[] cpuMs = new double[runs];
    UpdateSummary last = null;
    long payload = 0;
    int streamLength = 0;
    String loadBefore = load();
    for (int i = 0; i < warmup + runs; i++) {
      long c0 = processCpuNanos();
      long t0 = System.nanoTime();
      PackedWeights packed;
      long tb;
      if (host != null) {
        MaskSet bits = MaskSet.of(state.masks());
        tb = System.nanoTime();
        packed = PackedWeights.pack(state.weights(), state.masks(), names, bits, precision);
      } else {
        MaskSet bits = dev.maskSet(state);
        tb = System.nanoTime();
        packed = dev.pack(state, names, bits, precision);
      }
      payload = packed.payloadBytes();
      streamLength = packed.streamLength();
      long t1 = System.nanoTime();
      long t2;
      if (host != null) {
        t2 = t1;
        last = host.apply(state, maps.get(i % maps.size()));
      } else {
        try (NDManager m = NDManager.newBaseManager(device)) {
          NDArray g = dev.upload(state, flats.get(i % flats.size()), m);
          t2 = System.nanoTime();
          last = dev.apply(state, g);
        }
      }
      long t3 = System.nanoTime();
      long c1 = processCpuNanos();
      if (i >= warmup) {
        packMs[i - warmup] = (t1 - t0) / 1e6;
        bitsMs[i - warmup] = (tb - t0) / 1e6;
        uploadMs[i - warmup] = (t2 - t1) / 1e6;
        updateMs[i - warmup] = (t3 - t2) / 1e6;
        cpuMs[i - warmup] = (c1 - c0) / 1e6;
      }
    }
    double[] sum = new double[runs];
    double[] sumWithUpload = new double[runs];
    for (int i = 0; i < runs; i++) {
      sum[i] = packMs[i] + updateMs[i];
      sumWithUpload[i] = sum[i] + uploadMs[i];
    }
    System.out.printf(
        "%s %s, %d parameters (%d prunable in %d matrices), step %d, kept %.4f, "
            + "broadcast %.1f MB %s; medians of %d after %d warm-up:%n",
        device == null
            ? "java (DriverUpdate + MaskSet.of + PackedWeights.pack)"
            : "device " + device,
        criterion,
        total,
        last.sparsity().totalNumel(),
        last.sparsity().matrices().size(),
        last.step(),
        1 - last.sparsity().sparsity(),
        payload / 1e6,
        precision,
        runs,
        warmup);
    System.out.printf(
        "  update + packing %.1f ms (update %.1f, packing: mask bits + packed "
            + "weights %.1f, of it mask bits %.1f)%s; process CPU %.1f ms per step; load %s -> %s;"
            + " host buffers %s%n",
        median(sum),
        median(updateMs),
        median(packMs),
        median(bitsMs),
        device == null
            ? ""
            : String.format(
                "; gradient upload from the heap %.1f ms, with it %.1f ms",
                median(uploadMs), median(sumWithUpload)),
        median(cpuMs),
        loadBefore,
        load(),
        io.capprune.core.tensor.PinnedMemory.describe());
    if (dev != null) {
      // where the device's time goes: the mask selection of a step alone (same threshold again)
      double[] select = new double[runs];
      for (int i = 0; i < runs; i++) {
        long t0 = System.nanoTime();
        dev.recomputeMasks(state, last.nextThreshold());
        select[i] = (System.nanoTime() - t0) / 1e6;
      }
      System.out.printf(
          "  of the update: mask selection (top-k per group of same-sized matrices, "
              + "new mask vector) %.1f ms%n",
          median(select));
      // where the packed stream's time goes: the fp16 encoding of that many values on the device
      // with their download to a fresh heap array, and the allocation of such an array alone
      // (the JVM zeroes it; a new one every step)
      if (precision == WirePrecision.FP16 && streamLength > 0) {
        double[] encodeMs = new double[runs];
        double[] allocMs = new double[runs];
        long touched = 0;
        try (NDManager m = NDManager.newBaseManager(device)) {
          NDArray x = m.randomNormal(0f, 0.02f, new Shape(streamLength), DataType.FLOAT32);
          for (int i = 0; i < warmup + runs; i++) {
            long t0 = System.nanoTime();
            HalfBlocks.Encoded e = HalfBlocks.encode(x);
            long t1 = System.nanoTime();
            short[] fresh = new short[streamLength];
            long t2 = System.nanoTime();
            touched += e.halves()[i] + fresh[streamLength - 1 - i];
            if (i >= warmup) {
              encodeMs[i - warmup] = (t1 - t0) / 1e6;
              allocMs[i - warmup] = (t2 - t1) / 1e6;
            }
          }
        }
        System.out.printf(
            "  of the packing: fp16 encoding of the %d-value stream on the device, download and heap"
                + " copy %.1f ms; a fresh short[] of that length alone %.1f ms%n",
            streamLength, median(encodeMs), median(allocMs));
        sink = touched;
      }
      // The summed gradient to the device: fp32 from the heap (applyFlat; the host first decodes
      // the fp16 buffers it received) against one executor's buffer as it arrived, fp16 halves
      // decoded on the device (applyEncoded). Each ends with a one-value read so the copy is done.
      HalfBlocks.Encoded enc = HalfBlocks.encode(flats.get(0));
      // the same kind of kept buffer as the update's own (page-locked on a GPU where possible)
      io.capprune.core.tensor.HostBuffer hostBuffer =
          new io.capprune.core.tensor.HostBuffer(device);
      java.nio.ByteBuffer staging = hostBuffer.get(HalfBlocks.stagingBytes(enc.halves().length));
      float[] decoded = new float[enc.halves().length];
      double[] up32 = new double[runs];
      double[] up16 = new double[runs];
      double[] hostDecode = new double[runs];
      for (int i = 0; i < warmup + runs; i++) {
        try (NDManager m = NDManager.newBaseManager(device)) {
          long t0 = System.nanoTime();
          HalfBlocks.decodeIntoParallel(enc, decoded);
          long t1 = System.nanoTime();
          dev.upload(state, decoded, m).get(0).getFloat();
          long t2 = System.nanoTime();
          HalfBlocks.decode(enc, m, staging).get(0).getFloat();
          long t3 = System.nanoTime();
          if (i >= warmup) {
            hostDecode[i - warmup] = (t1 - t0) / 1e6;
            up32[i - warmup] = (t2 - t1) / 1e6;
            up16[i - warmup] = (t3 - t2) / 1e6;
          }
        }
      }
      System.out.printf(
          "  summed gradient to the device: host decode of an fp16 buffer %.1f ms + fp32 upload %.1f"
              + " ms, against the fp16 buffer up and decoded on the device %.1f ms (%.1f MB)%n",
          median(hostDecode), median(up32), median(up16), 2.0 * enc.halves().length / 1e6);
      dev.close();
      hostBuffer.close();
    }
  }

  /** Where the benchmark leaves values it reads, so that the JIT keeps the reads. */
  private static volatile long sink;

  private static double median(double[] v) {
    double[] s = v.clone();
    Arrays.sort(s);
    return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  }

  /**
   * utime + stime of this process from /proc/self/stat (clock ticks of 10 ms), in ns; -1 if absent.
   */
  private static long processCpuNanos() {
    try {
      String stat = Files.readString(Path.of("/proc/self/stat"));
      String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
      return (Long.parseLong(f[11]) + Long.parseLong(f[12])) * 10_000_000L;
    } catch (Exception e) {
      return -1;
    }
  }

  private static String load() {
    try {
      String[] f = Files.readString(Path.of("/proc/loadavg")).split(" ");
      return f[0] + "/" + f[1] + "/" + f[2];
    } catch (Exception e) {
      return "?";
    }
  }
}
