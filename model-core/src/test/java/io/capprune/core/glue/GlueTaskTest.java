package io.capprune.core.glue;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class GlueTaskTest {

  @ParameterizedTest
  @CsvSource({
    "sst-2, SST2",
    "sst2, SST2",
    "SST-2, SST2",
    "Sst_2, SST2",
    " SST2 , SST2",
    "sts-b, STSB",
    "STSB, STSB",
    "cola, COLA",
    "CoLA, COLA",
    "mrpc, MRPC",
    "qqp, QQP",
    "MNLI, MNLI",
    "qnli, QNLI",
    "rte, RTE",
    "wnli, WNLI"
  })
  void lookupIgnoresCaseAndDashes(String name, GlueTask expected) {
    assertEquals(expected, GlueTask.of(name));
  }

  @Test
  void unknownTaskListsValidNames() {
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> GlueTask.of("sst-3"));
    assertEquals(
        "unknown GLUE task 'sst-3' (valid: CoLA, SST-2, MRPC, STS-B, QQP, MNLI, QNLI, RTE, WNLI)",
        e.getMessage());
    assertTrue(
        assertThrows(IllegalArgumentException.class, () -> GlueTask.of(null))
            .getMessage()
            .startsWith("unknown GLUE task 'null'"));
  }

  @Test
  void directoryNames() {
    assertEquals(
        List.of("CoLA", "SST-2", "MRPC", "STS-B", "QQP", "MNLI", "QNLI", "RTE", "WNLI"),
        java.util.Arrays.stream(GlueTask.values()).map(GlueTask::dirName).toList());
  }

  @Test
  void splitsAndFileNames() {
    assertEquals(List.of("dev"), GlueTask.SST2.devSplits());
    assertEquals("dev.tsv", GlueTask.SST2.fileName("dev"));
    assertEquals("train.tsv", GlueTask.RTE.fileName(GlueTask.RTE.trainSplit()));
    assertEquals(List.of("dev_matched", "dev_mismatched"), GlueTask.MNLI.devSplits());
    assertEquals("dev_mismatched.tsv", GlueTask.MNLI.fileName("dev_mismatched"));
    assertEquals(
        List.of("train", "dev_matched", "dev_mismatched", "test_matched", "test_mismatched"),
        GlueTask.MNLI.splits());
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> GlueTask.MNLI.fileName("dev"));
    assertEquals(
        "GLUE task MNLI has no split 'dev' (splits: train, dev_matched, dev_mismatched, "
            + "test_matched, test_mismatched)",
        e.getMessage());
  }

  @Test
  void labelsInCheckpointOrder() {
    assertEquals(List.of("entailment", "neutral", "contradiction"), GlueTask.MNLI.labels());
    assertEquals(List.of("entailment", "not_entailment"), GlueTask.QNLI.labels());
    assertEquals(List.of("entailment", "not_entailment"), GlueTask.RTE.labels());
    for (GlueTask t :
        List.of(GlueTask.COLA, GlueTask.SST2, GlueTask.MRPC, GlueTask.QQP, GlueTask.WNLI)) {
      assertEquals(List.of("0", "1"), t.labels(), t.name());
      assertEquals(2, t.numLabels());
      assertFalse(t.isRegression());
    }
    assertTrue(GlueTask.STSB.isRegression());
    assertEquals(1, GlueTask.STSB.numLabels());
    assertEquals(3, GlueTask.MNLI.numLabels());
  }

  @Test
  void metricsAndMainMetric() {
    assertEquals(List.of("mcc"), GlueTask.COLA.metrics());
    assertEquals(List.of("acc", "f1", "acc_and_f1", "combined_score"), GlueTask.MRPC.metrics());
    assertEquals(List.of("acc", "f1", "acc_and_f1", "combined_score"), GlueTask.QQP.metrics());
    assertEquals(
        List.of("pearson", "spearmanr", "corr", "combined_score"), GlueTask.STSB.metrics());
    for (GlueTask t :
        List.of(GlueTask.SST2, GlueTask.MNLI, GlueTask.QNLI, GlueTask.RTE, GlueTask.WNLI)) {
      assertEquals(List.of("acc"), t.metrics(), t.name());
      assertEquals("acc", t.mainMetric(), t.name());
    }
    assertEquals("mcc", GlueTask.COLA.mainMetric());
    assertEquals("f1", GlueTask.MRPC.mainMetric());
    assertEquals("f1", GlueTask.QQP.mainMetric());
    assertEquals("spearmanr", GlueTask.STSB.mainMetric());
    for (GlueTask t : GlueTask.values()) {
      assertTrue(t.metrics().contains(t.mainMetric()), t.name());
    }
  }

  @Test
  void layouts() {
    GlueTask.Layout cola = GlueTask.COLA.layout("train");
    assertFalse(cola.header());
    assertEquals(4, cola.columnCount());
    assertEquals(3, cola.textA().index());
    assertEquals(1, cola.label().index());
    assertNull(cola.textB());
    assertTrue(GlueTask.COLA.hasHeader("test"));
    assertNull(GlueTask.SST2.layout("test").label());
    assertEquals("Quality", GlueTask.MRPC.layout("dev").label().name());
    assertEquals("gold_label", GlueTask.MNLI.layout("dev_matched").label().name());
    assertTrue(GlueTask.QNLI.isPair());
    assertFalse(GlueTask.SST2.isPair());
    assertTrue(GlueTask.QQP.skipBadRowsByDefault());
    assertFalse(GlueTask.SST2.skipBadRowsByDefault());
  }
}
