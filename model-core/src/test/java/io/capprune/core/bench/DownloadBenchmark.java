package io.capprune.core.bench;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.capprune.core.bert.DjlRuntime;
import java.nio.ByteOrder;
import java.nio.ShortBuffer;
import java.util.Arrays;
import java.util.Locale;

/**
 * Where the worker's gradient download goes: a BERT-base-sized fp16 vector from the device to a
 * Java short[] four ways (medians of {@code --reps}). Answers whether a fresh host allocation per
 * step (first-touch page faults) or the copy itself is the cost. Run on the GPU machine through the
 * kit: {@code bash .gpu/run.sh io.capprune.core.bench.DownloadBenchmark}.
 */
public final class DownloadBenchmark {

  private DownloadBenchmark() {}

  public static void main(String[] args) {
    int n = 85_646_594;
    int reps = 10;
    for (String a : args) {
      if (a.startsWith("--values=")) {
        n = Integer.parseInt(a.substring(9));
      } else if (a.startsWith("--reps=")) {
        reps = Integer.parseInt(a.substring(7));
      }
    }
    DjlRuntime.start(Runtime.getRuntime().availableProcessors());
    Device device =
        ai.djl.engine.Engine.getInstance().getGpuCount() > 0 ? Device.gpu(0) : Device.cpu();
    try (NDManager m = NDManager.newBaseManager(device)) {
      NDArray v = m.randomNormal(new Shape(n)).toType(DataType.FLOAT16, false);
      short[] reused = new short[n];
      Arrays.fill(reused, (short) 1);
      System.out.printf(
          Locale.ROOT,
          "device %s, %d fp16 values (%.1f MB), medians of %d%n",
          device,
          n,
          n * 2 / 1e6,
          reps);
      report(
          "fresh short[] per step, toByteBuffer(true) (the worker today)",
          reps,
          () -> {
            short[] h = new short[(int) v.size()];
            view(v).get(h);
            return h[h.length - 1];
          });
      report(
          "reused short[], toByteBuffer(true)",
          reps,
          () -> {
            view(v).get(reused);
            return reused[reused.length - 1];
          });
      report(
          "toDevice(cpu) only, fresh host tensor",
          reps,
          () -> {
            try (NDManager t = m.newSubManager()) {
              NDArray c = v.toDevice(Device.cpu(), true);
              c.attach(t);
              return c.getShape().size();
            }
          });
      try (NDManager keep = NDManager.newBaseManager(Device.cpu())) {
        NDArray host = keep.zeros(new Shape(n), DataType.FLOAT16);
        report(
            "persistent host tensor: host.set(all, device) then direct view into reused",
            reps,
            () -> {
              host.set(new NDIndex(":"), v);
              view(host).get(reused);
              return reused[reused.length - 1];
            });
      } catch (RuntimeException e) {
        System.out.println("persistent host tensor: not possible here: " + e);
      }
      report(
          "HostStaging.read into reused (what the job does; host buffer as below)",
          reps,
          () -> {
            io.capprune.core.tensor.HostStaging.read(v, b -> b.asShortBuffer().get(reused));
            return reused[reused.length - 1];
          });
      report(
          "HostStaging.read, the reader copies nothing (device to host buffer alone)",
          reps,
          () -> {
            io.capprune.core.tensor.HostStaging.read(v, b -> reused[0] = b.getShort(0));
            return reused[0];
          });
      report(
          "HostStaging.read + HostCopy.get into reused (what HalfBlocks.encode does)",
          reps,
          () -> {
            io.capprune.core.tensor.HostStaging.read(
                v, b -> io.capprune.core.tensor.HostCopy.get(b, reused));
            return reused[reused.length - 1];
          });
      java.nio.ByteBuffer pageable =
          java.nio.ByteBuffer.allocateDirect(2 * n).order(ByteOrder.nativeOrder());
      pageable.asShortBuffer().put(reused);
      report(
          "upload from a kept direct buffer (pageable)",
          reps,
          () -> {
            try (NDArray up = m.create(pageable, v.getShape(), DataType.FLOAT16)) {
              return up.getShape().size();
            }
          });
      try (io.capprune.core.tensor.HostBuffer staging =
          new io.capprune.core.tensor.HostBuffer(device)) {
        java.nio.ByteBuffer b = staging.get(2L * n);
        b.asShortBuffer().put(reused);
        report(
            "upload from a HostBuffer (page-locked: " + staging.pinned() + ")",
            reps,
            () -> {
              try (NDArray up = m.create(b, v.getShape(), DataType.FLOAT16)) {
                return up.getShape().size();
              }
            });
      }
      System.out.printf(
          Locale.ROOT,
          "host buffers for GPU transfers: %s%n",
          io.capprune.core.tensor.PinnedMemory.describe());
    }
  }

  private static ShortBuffer view(NDArray a) {
    return a.toByteBuffer(true).order(ByteOrder.nativeOrder()).asShortBuffer();
  }

  private interface Step {
    Object run();
  }

  private static void report(String name, int reps, Step step) {
    step.run();
    double[] ms = new double[reps];
    for (int i = 0; i < reps; i++) {
      long t0 = System.nanoTime();
      step.run();
      ms[i] = (System.nanoTime() - t0) / 1e6;
    }
    Arrays.sort(ms);
    System.out.printf(Locale.ROOT, "| %s | %.1f ms | min %.1f |%n", name, ms[reps / 2], ms[0]);
  }
}
