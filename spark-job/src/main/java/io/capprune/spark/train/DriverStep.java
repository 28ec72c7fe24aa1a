package io.capprune.spark.train;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.util.cuda.CudaUtils;
import io.capprune.core.exchange.HalfBlocks;
import io.capprune.core.exchange.MaskSet;
import io.capprune.core.exchange.PackedWeights;
import io.capprune.core.exchange.WirePrecision;
import io.capprune.core.prune.DeviceDriverUpdate;
import io.capprune.core.prune.DriverUpdate;
import io.capprune.core.prune.TrainingState;
import io.capprune.core.prune.UpdateSummary;
import io.capprune.core.tensor.ParameterLayout;
import io.capprune.spark.worker.GpuAddresses;
import io.capprune.spark.worker.WorkerRuntime;
import java.util.Locale;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.resource.ResourceInformation;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The driver's half of a training step: it publishes the state's weights (its masks and the weights
 * packed against them) and applies the summed gradient, either on the heap ({@link DriverUpdate})
 * or on the driver's GPU or CPU through DJL ({@link DeviceDriverUpdate}), with the state resident
 * there; {@link DistributedTrainer#DRIVER_UPDATE} chooses.
 */
final class DriverStep implements GradientExchange.Weights, AutoCloseable {
  // The trainer's logger: these lines read as the trainer's, as they always have.
  private static final Logger LOG = LoggerFactory.getLogger(DistributedTrainer.class);

  private final TrainingState state;
  private final DriverUpdate update;
  private final DeviceDriverUpdate onDevice;
  private final ParameterLayout layout;
  private final WirePrecision precision;

  /**
   * Whose lock the device update's calls take: in local mode the driver shares the JVM with the
   * executors, and on any driver the JVM's exit (a SIGTERM mid-step) waits for a call inside
   * libtorch instead of destroying libtorch's static objects under it.
   */
  private final WorkerRuntime runtime;

  private DriverStep(
      TrainingState state,
      DriverUpdate update,
      DeviceDriverUpdate onDevice,
      ParameterLayout layout,
      WirePrecision precision) {
    this.state = state;
    this.update = update;
    this.onDevice = onDevice;
    this.layout = layout;
    this.precision = precision;
    this.runtime = onDevice != null ? WorkerRuntime.get() : null;
  }

  /**
   * The driver's update of {@code state}, where {@link DistributedTrainer#DRIVER_UPDATE} and the
   * driver's resources say.
   *
   * @param layout the trainable tensors, in the order of the packed weights and the gradient
   * @param precision of the packed weights
   */
  static DriverStep open(
      JavaSparkContext sc,
      DriverUpdate update,
      TrainingState state,
      ParameterLayout layout,
      WirePrecision precision) {
    return new DriverStep(state, update, deviceUpdate(sc, update), layout, precision);
  }

  @Override
  public MaskSet masks() {
    return onDevice != null
        ? runtime.alone(() -> onDevice.maskSet(state))
        : MaskSet.of(state.masks());
  }

  @Override
  public PackedWeights pack(MaskSet masks) {
    return onDevice != null
        ? runtime.alone(() -> onDevice.pack(state, layout.names(), masks, precision))
        : PackedWeights.pack(state.weights(), state.masks(), layout.names(), masks, precision);
  }

  /**
   * Clips, applies AdamW, updates scores and masks from the summed gradient of the batch mean. On a
   * device, a sum that is still one fp16 buffer (one partition) goes up encoded and is decoded
   * there.
   */
  UpdateSummary apply(GradientBuffer sum) {
    if (onDevice != null) {
      HalfBlocks.Encoded encoded = sum.encodedOrNull();
      return runtime.alone(
          () ->
              encoded != null
                  ? onDevice.applyEncoded(state, encoded)
                  : onDevice.applyFlat(state, sum.gradient()));
    }
    return update.apply(state, layout.unflatten(sum.gradient()));
  }

  /** On the device: the state goes back to the host tensors and the device's memory is freed. */
  @Override
  public void close() {
    if (onDevice != null) {
      runtime.alone(
          () -> {
            onDevice.close();
            return null;
          });
    }
  }

  /**
   * The device update for this driver, or null for the heap update. The driver's GPU: the one Spark
   * assigned ({@code spark.driver.resource.gpu.amount}, mapped through CUDA_VISIBLE_DEVICES), else
   * in client mode GPU 0 when CUDA shows one and the PyTorch engine can use it.
   */
  private static DeviceDriverUpdate deviceUpdate(JavaSparkContext sc, DriverUpdate update) {
    String key = DistributedTrainer.DRIVER_UPDATE;
    String mode = sc.getConf().get(key, "auto").trim().toLowerCase(Locale.ROOT);
    switch (mode) {
      case "host":
        return null;
      case "cpu":
        LOG.info("driver update: through DJL on the CPU ({}=cpu)", key);
        return new DeviceDriverUpdate(update.pruning(), update.optimizer(), Device.cpu());
      case "auto":
      case "gpu":
        break;
      default:
        throw new IllegalArgumentException(
            key + ": expected auto, host, cpu or gpu, got '" + mode + "'");
    }
    Integer ordinal = null;
    String why;
    ResourceInformation gpus = sc.resources().get("gpu");
    if (gpus != null && gpus.addresses().length > 0) {
      ordinal =
          GpuAddresses.cudaOrdinal(gpus.addresses()[0], System.getenv("CUDA_VISIBLE_DEVICES"));
      why = "Spark assigned the driver GPU " + gpus.addresses()[0];
    } else if (!"cluster".equals(sc.getConf().get("spark.submit.deployMode", "client"))
        && CudaUtils.getGpuCount() > 0) {
      ordinal = 0;
      why = "the driver's host shows " + CudaUtils.getGpuCount() + " GPU(s)";
    } else {
      why = "the driver has no GPU";
    }
    if (ordinal != null) {
      int engineGpus;
      try {
        engineGpus = Engine.getEngine("PyTorch").getGpuCount();
      } catch (RuntimeException | UnsatisfiedLinkError e) {
        engineGpus = 0;
        why += " (the PyTorch engine did not load: " + e.getMessage() + ")";
      }
      if (engineGpus > ordinal) {
        LOG.info("driver update: on gpu({}) ({})", ordinal, why);
        return new DeviceDriverUpdate(update.pruning(), update.optimizer(), Device.gpu(ordinal));
      }
      why += ", but the PyTorch engine sees " + engineGpus + " GPU(s) (a CPU libtorch?)";
    }
    if (mode.equals("gpu")) {
      throw new IllegalStateException(key + "=gpu: " + why);
    }
    LOG.info("driver update: on the heap ({})", why);
    return null;
  }
}
