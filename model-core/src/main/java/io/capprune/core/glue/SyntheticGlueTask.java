package io.capprune.core.glue;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * The project's own small binary sentiment task in SST-2 format ({@code sentence\tlabel} header,
 * labels 0/1), for the demo and for tests, so that a first run needs no downloaded data.
 *
 * <p>Sentences are lower-case words and punctuation from a fixed vocabulary: 1-3 cue words of the
 * label's polarity, strictly fewer of the other polarity, neutral filler, shuffled. The label is
 * therefore a function of the word counts (learnable by a small model in a few hundred steps),
 * except for a fraction {@code labelNoise} of rows whose label is flipped so that accuracy does not
 * saturate at 1. Generation is deterministic in the seed ({@link SplittableRandom} is specified to
 * give the same sequence on every JVM).
 *
 * <p>{@link #vocabulary()} lists every token used, after BERT's special tokens at ids 0-4, so a
 * matching {@code vocab.txt} (one token per line, line number = id) can be written for a small
 * randomly initialised model.
 */
public final class SyntheticGlueTask {
  public static final List<String> SPECIAL_TOKENS =
      List.of("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]");
  public static final List<String> POSITIVE =
      List.of(
          "good",
          "great",
          "excellent",
          "wonderful",
          "brilliant",
          "charming",
          "delightful",
          "moving",
          "funny",
          "beautiful",
          "enjoyable",
          "superb");
  public static final List<String> NEGATIVE =
      List.of(
          "bad",
          "awful",
          "terrible",
          "boring",
          "dull",
          "tedious",
          "weak",
          "clumsy",
          "bland",
          "painful",
          "mediocre",
          "lifeless");
  public static final List<String> NEUTRAL =
      List.of(
          "the",
          "a",
          "this",
          "that",
          "movie",
          "film",
          "story",
          "plot",
          "acting",
          "cast",
          "director",
          "script",
          "scene",
          "ending",
          "music",
          "it",
          "is",
          "was",
          "and",
          "but",
          "with",
          "of",
          "very",
          "quite",
          "really",
          "rather",
          "overall",
          "its",
          "in",
          "as");
  public static final List<String> PUNCTUATION = List.of(".", ",", "!");

  public static final int DEFAULT_TRAIN_SIZE = 2000;
  public static final int DEFAULT_DEV_SIZE = 400;
  public static final long DEFAULT_SEED = 42L;
  public static final double DEFAULT_LABEL_NOISE = 0.05;

  private final int trainSize;
  private final int devSize;
  private final long seed;
  private final double labelNoise;
  private String trainTsv;
  private String devTsv;

  public SyntheticGlueTask(int trainSize, int devSize, long seed, double labelNoise) {
    if (trainSize < 1 || devSize < 1) {
      throw new IllegalArgumentException(
          "train and dev sizes must be >= 1, got " + trainSize + " and " + devSize);
    }
    if (!(labelNoise >= 0 && labelNoise < 0.5)) {
      throw new IllegalArgumentException("label noise must be in [0, 0.5), got " + labelNoise);
    }
    this.trainSize = trainSize;
    this.devSize = devSize;
    this.seed = seed;
    this.labelNoise = labelNoise;
  }

  /** 2000 train / 400 dev rows, seed 42, 5 % flipped labels. */
  public static SyntheticGlueTask defaults() {
    return new SyntheticGlueTask(
        DEFAULT_TRAIN_SIZE, DEFAULT_DEV_SIZE, DEFAULT_SEED, DEFAULT_LABEL_NOISE);
  }

  /** The GLUE task whose format and metrics the files follow. */
  public static GlueTask format() {
    return GlueTask.SST2;
  }

  public int trainSize() {
    return trainSize;
  }

  public int devSize() {
    return devSize;
  }

  public long seed() {
    return seed;
  }

  public double labelNoise() {
    return labelNoise;
  }

  /** The content of {@code train.tsv}. */
  public synchronized String trainTsv() {
    generate();
    return trainTsv;
  }

  /** The content of {@code dev.tsv}. */
  public synchronized String devTsv() {
    generate();
    return devTsv;
  }

  /**
   * Special tokens (ids 0-4), then the words, then the punctuation: the lines of {@code vocab.txt}.
   */
  public static List<String> vocabulary() {
    List<String> v = new ArrayList<>(SPECIAL_TOKENS);
    v.addAll(POSITIVE);
    v.addAll(NEGATIVE);
    v.addAll(NEUTRAL);
    v.addAll(PUNCTUATION);
    return List.copyOf(v);
  }

  public static String vocabTxt() {
    return String.join("\n", vocabulary()) + "\n";
  }

  /**
   * Writes {@code train.tsv}, {@code dev.tsv} and {@code vocab.txt} into {@code dir} (created if
   * needed).
   */
  public void writeTo(Path dir) {
    try {
      Files.createDirectories(dir);
      Files.writeString(dir.resolve("train.tsv"), trainTsv(), StandardCharsets.UTF_8);
      Files.writeString(dir.resolve("dev.tsv"), devTsv(), StandardCharsets.UTF_8);
      Files.writeString(dir.resolve("vocab.txt"), vocabTxt(), StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new UncheckedIOException(dir + ": cannot write the synthetic task: " + e, e);
    }
  }

  private void generate() {
    if (trainTsv != null) {
      return;
    }
    SplittableRandom rng = new SplittableRandom(seed);
    // Separate streams: dev does not change when only the train size changes.
    SplittableRandom trainRng = rng.split();
    SplittableRandom devRng = rng.split();
    trainTsv = tsv(trainRng, trainSize);
    devTsv = tsv(devRng, devSize);
  }

  private String tsv(SplittableRandom rng, int rows) {
    StringBuilder sb = new StringBuilder(rows * 64);
    sb.append("sentence\tlabel\n");
    for (int i = 0; i < rows; i++) {
      int label = rng.nextInt(2);
      sb.append(sentence(rng, label)).append('\t');
      boolean flip = rng.nextDouble() < labelNoise;
      sb.append(flip ? 1 - label : label).append('\n');
    }
    return sb.toString();
  }

  private static String sentence(SplittableRandom rng, int label) {
    List<String> same = label == 1 ? POSITIVE : NEGATIVE;
    List<String> other = label == 1 ? NEGATIVE : POSITIVE;
    int cues = 1 + rng.nextInt(3);
    int contrary = rng.nextInt(cues);
    int filler = 3 + rng.nextInt(6);
    List<String> words = new ArrayList<>();
    for (int i = 0; i < cues; i++) {
      words.add(pick(rng, same));
    }
    for (int i = 0; i < contrary; i++) {
      words.add(pick(rng, other));
    }
    for (int i = 0; i < filler; i++) {
      words.add(pick(rng, NEUTRAL));
    }
    for (int i = words.size() - 1; i > 0; i--) {
      int j = rng.nextInt(i + 1);
      words.set(i, words.set(j, words.get(i)));
    }
    if (rng.nextInt(4) == 0) {
      words.add(1 + rng.nextInt(words.size() - 1), ",");
    }
    words.add(rng.nextInt(3) == 0 ? "!" : ".");
    return String.join(" ", words);
  }

  private static String pick(SplittableRandom rng, List<String> from) {
    return from.get(rng.nextInt(from.size()));
  }
}
