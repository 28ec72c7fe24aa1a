package io.capprune.core.glue;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.StringReader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SyntheticGlueTaskTest {

  private static GlueData read(String tsv, String split) {
    return GlueReader.of(SyntheticGlueTask.format())
        .read(split, new StringReader(tsv), "synthetic");
  }

  /** Predicts from word counts alone: more positive than negative cue words means label 1. */
  private static double ruleAccuracy(GlueData data) {
    Set<String> pos = new HashSet<>(SyntheticGlueTask.POSITIVE);
    Set<String> neg = new HashSet<>(SyntheticGlueTask.NEGATIVE);
    int[] pred = new int[data.size()];
    for (int i = 0; i < pred.length; i++) {
      int score = 0;
      for (String w : data.examples().get(i).textA().split(" ")) {
        score += pos.contains(w) ? 1 : neg.contains(w) ? -1 : 0;
      }
      assertNotEquals(0, score, "the cue words decide every row");
      pred[i] = score > 0 ? 1 : 0;
    }
    return GlueMetrics.accuracy(pred, data.labelIds());
  }

  @Test
  void defaultsReadAsSst2AndAreBalanced() {
    SyntheticGlueTask t = SyntheticGlueTask.defaults();
    GlueData train = read(t.trainTsv(), "train");
    GlueData dev = read(t.devTsv(), "dev");
    assertEquals(2000, train.size());
    assertEquals(400, dev.size());
    assertTrue(t.trainTsv().startsWith("sentence\tlabel\n"));
    double positive = java.util.Arrays.stream(train.labelIds()).average().orElseThrow();
    assertTrue(positive > 0.45 && positive < 0.55, "positive share " + positive);
  }

  @Test
  void labelIsLearnableFromWordsUpToTheNoise() {
    SyntheticGlueTask noisy = SyntheticGlueTask.defaults();
    double dev = ruleAccuracy(read(noisy.devTsv(), "dev"));
    double train = ruleAccuracy(read(noisy.trainTsv(), "train"));
    System.out.printf(
        "synthetic task: word-count rule accuracy train %.4f dev %.4f (label noise %.2f)%n",
        train, dev, noisy.labelNoise());
    assertTrue(dev > 0.91 && dev < 0.99, "dev " + dev);
    assertTrue(train > 0.93 && train < 0.97, "train " + train);
    SyntheticGlueTask clean = new SyntheticGlueTask(300, 100, 7, 0.0);
    assertEquals(1.0, ruleAccuracy(read(clean.devTsv(), "dev")));
    assertEquals(1.0, ruleAccuracy(read(clean.trainTsv(), "train")));
  }

  @Test
  void deterministicInTheSeed() {
    SyntheticGlueTask a = new SyntheticGlueTask(50, 20, 1, 0.05);
    SyntheticGlueTask b = new SyntheticGlueTask(50, 20, 1, 0.05);
    assertEquals(a.trainTsv(), b.trainTsv());
    assertEquals(a.devTsv(), b.devTsv());
    assertNotEquals(a.trainTsv(), new SyntheticGlueTask(50, 20, 2, 0.05).trainTsv());
    // Dev comes from its own stream: a bigger train set does not change it.
    assertEquals(a.devTsv(), new SyntheticGlueTask(500, 20, 1, 0.05).devTsv());
    // Train rows are a prefix of the same stream whatever the size.
    String firstRow = a.trainTsv().split("\n")[1];
    assertEquals(firstRow, new SyntheticGlueTask(1, 1, 1, 0.05).trainTsv().split("\n")[1]);
    // A literal row pins the generator across JVMs and refactorings (the demo's data must not
    // drift).
    assertEquals("moving , this that acting delightful very enjoyable the this .\t1", firstRow);
  }

  @Test
  void vocabularyCoversEveryToken() {
    List<String> vocab = SyntheticGlueTask.vocabulary();
    assertEquals(List.of("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"), vocab.subList(0, 5));
    assertEquals(vocab.size(), new HashSet<>(vocab).size(), "tokens are unique");
    assertEquals(5 + 12 + 12 + 30 + 3, vocab.size());
    SyntheticGlueTask t = SyntheticGlueTask.defaults();
    Set<String> used = new HashSet<>();
    for (GlueExample e : read(t.trainTsv(), "train").examples()) {
      used.addAll(List.of(e.textA().split(" ")));
    }
    assertTrue(
        vocab.containsAll(used),
        "tokens outside vocab: " + used.stream().filter(w -> !vocab.contains(w)).toList());
    for (String w : used) {
      assertEquals(w.toLowerCase(java.util.Locale.ROOT), w);
    }
    assertTrue(
        used.containsAll(SyntheticGlueTask.POSITIVE)
            && used.containsAll(SyntheticGlueTask.NEGATIVE));
    assertEquals(String.join("\n", vocab) + "\n", SyntheticGlueTask.vocabTxt());
  }

  @Test
  void writesAGlueTaskDirectory(@TempDir Path glue) throws Exception {
    SyntheticGlueTask t = new SyntheticGlueTask(30, 10, 3, 0.1);
    t.writeTo(glue.resolve("SST-2"));
    GlueData dev = GlueReader.of(GlueTask.SST2).readSplit(glue, "dev");
    assertEquals(10, dev.size());
    assertEquals(30, GlueReader.of(GlueTask.SST2).readSplit(glue, "train").size());
    assertEquals(
        SyntheticGlueTask.vocabulary(), Files.readAllLines(glue.resolve("SST-2/vocab.txt")));
  }

  @Test
  void badSettingsAreRejected() {
    assertEquals(
        "train and dev sizes must be >= 1, got 0 and 5",
        assertThrows(IllegalArgumentException.class, () -> new SyntheticGlueTask(0, 5, 1, 0))
            .getMessage());
    assertEquals(
        "label noise must be in [0, 0.5), got 0.5",
        assertThrows(IllegalArgumentException.class, () -> new SyntheticGlueTask(5, 5, 1, 0.5))
            .getMessage());
  }
}
