package io.capprune.core.testing;

import io.capprune.core.bert.BertInit;
import io.capprune.core.checkpoint.BertConfig;
import io.capprune.core.checkpoint.BertTensorNames;
import io.capprune.core.checkpoint.HfCheckpoint;
import io.capprune.core.optim.ParallelLoops;
import io.capprune.core.tensor.HostTensor;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.SplittableRandom;
import java.util.function.DoubleSupplier;

/**
 * The BERT configurations and random parameters the tests build, in one place; model-core's
 * test-jar carries it to spark-job's tests. Each random generator keeps the value stream its tests
 * were written against, so tolerances tuned on those values still hold.
 */
public final class TestModels {

  private TestModels() {}

  /** Vocabulary 100, hidden 32, 4 heads, FFN 64, 40 positions, 3 labels; dropout 0.1 as BERT. */
  public static BertConfig tiny(int layers) {
    return BertConfig.builder()
        .vocabSize(100)
        .hiddenSize(32)
        .numHiddenLayers(layers)
        .numAttentionHeads(4)
        .intermediateSize(64)
        .maxPositionEmbeddings(40)
        .numLabels(3)
        .build();
  }

  /** 2 layers, hidden 8, 2 heads, FFN 16, vocabulary 20, 16 positions, 3 labels; dropout 0.1. */
  public static BertConfig tinyCheckpoint() {
    return BertConfig.builder()
        .vocabSize(20)
        .hiddenSize(8)
        .numHiddenLayers(2)
        .numAttentionHeads(2)
        .intermediateSize(16)
        .maxPositionEmbeddings(16)
        .numLabels(3)
        .build();
  }

  /**
   * Vocabulary 40, hidden 16, 16 positions, 3 labels and no dropout, so that a training forward is
   * deterministic (gradient checks against finite differences).
   */
  public static BertConfig dropoutFree(int layers, int heads, int intermediate) {
    return BertConfig.builder()
        .vocabSize(40)
        .hiddenSize(16)
        .numHiddenLayers(layers)
        .numAttentionHeads(heads)
        .intermediateSize(intermediate)
        .dropout(0f)
        .maxPositionEmbeddings(16)
        .numLabels(3)
        .build();
  }

  /**
   * Vocabulary 40, hidden 32, 2 layers of 2 heads, FFN 64, 32 positions, 2 labels and no dropout:
   * the distributed-training tests, whose runs must be repeatable to the bit.
   */
  public static BertConfig dropoutFreePair() {
    return BertConfig.builder()
        .vocabSize(40)
        .hiddenSize(32)
        .numHiddenLayers(2)
        .numAttentionHeads(2)
        .intermediateSize(64)
        .dropout(0f)
        .maxPositionEmbeddings(32)
        .build();
  }

  /**
   * Hidden 8, 2 layers of 2 heads, FFN 16, vocabulary 12, 3 labels (BERT's 512 positions): the
   * parameter maps of the driver-update tests.
   */
  public static BertConfig driverUpdateShape() {
    return BertConfig.builder()
        .vocabSize(12)
        .hiddenSize(8)
        .numHiddenLayers(2)
        .numAttentionHeads(2)
        .intermediateSize(16)
        .numLabels(3)
        .build();
  }

  /** MiniLM-L6's shape: hidden 384, 6 layers of 12 heads, FFN 1536 (BERT's other defaults). */
  public static BertConfig miniLmShape() {
    return BertConfig.builder().hiddenSize(384).numHiddenLayers(6).intermediateSize(1536).build();
  }

  /**
   * Parameters of {@code c} with every entry random (biases and LayerNorm too) and larger than
   * Hugging Face's 0.02 init, so that a wrong bias, transposition or non-linearity changes the
   * output visibly: {@link Random} from {@code seed}, scale 0.3.
   */
  public static LinkedHashMap<String, HostTensor> randomParams(BertConfig c, long seed) {
    return randomParams(c, new Random(seed)::nextGaussian, 0.3);
  }

  /**
   * Parameters of {@code c} in {@link BertInit#shapes} order: {@code scale * g} for each entry,
   * {@code 1 + 0.2 g} for LayerNorm weights, one draw of {@code gaussian} per entry.
   */
  public static LinkedHashMap<String, HostTensor> randomParams(
      BertConfig c, DoubleSupplier gaussian, double scale) {
    LinkedHashMap<String, HostTensor> out = new LinkedHashMap<>();
    BertInit.shapes(c)
        .forEach(
            (name, shape) -> {
              HostTensor t = HostTensor.zeros(shape);
              float[] d = t.data();
              boolean lnWeight = name.endsWith("LayerNorm.weight");
              for (int i = 0; i < d.length; i++) {
                double g = gaussian.getAsDouble();
                d[i] = (float) (lnWeight ? 1 + 0.2 * g : scale * g);
              }
              out.put(name, t);
            });
    return out;
  }

  /**
   * Gaussian values with standard deviation {@code std}, one seed per tensor, filled in parallel
   * (fast enough for BERT-base-sized maps in the driver-update tests and benchmarks).
   */
  public static LinkedHashMap<String, HostTensor> randomWeights(
      Map<String, int[]> shapes, double std, long seed) {
    List<String> names = new ArrayList<>(shapes.keySet());
    HostTensor[] out = new HostTensor[names.size()];
    ParallelLoops.forEach(
        names.size(),
        i -> {
          HostTensor t = HostTensor.zeros(shapes.get(names.get(i)));
          SplittableRandom r = new SplittableRandom(seed * 1_000_003L + i);
          float[] d = t.data();
          for (int j = 0; j < d.length; j++) {
            d[j] = (float) (r.nextGaussian() * std);
          }
          out[i] = t;
        });
    LinkedHashMap<String, HostTensor> m = new LinkedHashMap<>();
    for (int i = 0; i < out.length; i++) {
      m.put(names.get(i), out[i]);
    }
    return m;
  }

  /** A checkpoint of {@code config} with random tensors, optionally with pooler and classifier. */
  public static HfCheckpoint randomCheckpoint(
      BertConfig config, long seed, boolean pooler, boolean classifier) {
    Random rnd = new Random(seed);
    LinkedHashMap<String, HostTensor> t = new LinkedHashMap<>();
    BertTensorNames.required(config).forEach((n, s) -> t.put(n, randomTensor(rnd, s)));
    if (pooler) {
      BertTensorNames.pooler(config).forEach((n, s) -> t.put(n, randomTensor(rnd, s)));
    }
    if (classifier) {
      BertTensorNames.classifier(config).forEach((n, s) -> t.put(n, randomTensor(rnd, s)));
    }
    return new HfCheckpoint("tiny", config, t, vocab(config.vocabSize()));
  }

  /** A WordPiece vocabulary of {@code n} tokens: the five special tokens, then words and pieces. */
  public static List<String> vocab(int n) {
    List<String> v = new ArrayList<>(List.of("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"));
    for (int i = v.size(); i < n; i++) {
      v.add(i % 2 == 0 ? "tok" + i : "##p" + i);
    }
    return v;
  }

  /** Gaussian entries times 0.5, drawn from {@code rnd}. */
  public static HostTensor randomTensor(Random rnd, int... shape) {
    HostTensor t = HostTensor.zeros(shape);
    for (int i = 0; i < t.data().length; i++) {
      t.data()[i] = (float) rnd.nextGaussian() * 0.5f;
    }
    return t;
  }
}
