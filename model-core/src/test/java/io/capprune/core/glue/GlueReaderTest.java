package io.capprune.core.glue;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.StringReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class GlueReaderTest {

  private static GlueData read(GlueTask task, String split, String tsv) {
    return GlueReader.of(task).read(split, new StringReader(tsv), "mem.tsv");
  }

  private static GlueFormatException fails(GlueReader reader, String split, String tsv) {
    return assertThrows(
        GlueFormatException.class, () -> reader.read(split, new StringReader(tsv), "mem.tsv"));
  }

  private static GlueFormatException fails(GlueTask task, String split, String tsv) {
    return fails(GlueReader.of(task), split, tsv);
  }

  @Test
  void sst2KeepsTextsAsWrittenAndQuotesLiteral() {
    GlueData d =
        read(
            GlueTask.SST2,
            "dev",
            "sentence\tlabel\nit 's a charming journey . \t1\n\"unbalanced quote\t0\n'' a \"\" b\t1\n");
    assertEquals(3, d.size());
    assertEquals(0, d.skipped());
    assertEquals("mem.tsv", d.source());
    assertEquals(GlueTask.SST2, d.task());
    assertEquals("dev", d.split());
    assertEquals(
        GlueExample.classification(0, "it 's a charming journey . ", null, 1, 2),
        d.examples().get(0));
    assertEquals(
        GlueExample.classification(1, "\"unbalanced quote", null, 0, 3), d.examples().get(1));
    assertEquals("'' a \"\" b", d.examples().get(2).textA());
    assertEquals(4, d.examples().get(2).line());
    assertTrue(Float.isNaN(d.examples().get(0).score()));
    assertEquals(List.of(1, 0, 1), java.util.Arrays.stream(d.labelIds()).boxed().toList());
  }

  @Test
  void mrpcWithBomThroughInputStream() {
    byte[] bytes =
        ("\uFEFFQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
                + "1\t702876\t702977\tAmrozi accused his brother .\tReferring to him , Amrozi accused .\n"
                + "0\t2108705\t2108831\tYucaipa owned Dominick 's .\tYucaipa bought Dominick 's .\n")
            .getBytes(StandardCharsets.UTF_8);
    assertEquals((byte) 0xEF, bytes[0]);
    GlueData d =
        GlueReader.of(GlueTask.MRPC).read("train", new ByteArrayInputStream(bytes), "mrpc.tsv");
    assertEquals(2, d.size());
    GlueExample e = d.examples().get(0);
    assertEquals("Amrozi accused his brother .", e.textA());
    assertEquals("Referring to him , Amrozi accused .", e.textB());
    assertEquals(1, e.label());
    assertEquals(0, d.examples().get(1).label());
  }

  @Test
  void colaHasNoHeaderAndBomOnFirstRowIsStripped() {
    GlueData d =
        read(
            GlueTask.COLA,
            "train",
            "\uFEFFgj04\t1\t\tThe sailors rode the breeze .\ngj04\t0\t*\tThe more does Bill smoke .\n");
    assertEquals(2, d.size());
    assertEquals(
        GlueExample.classification(0, "The sailors rode the breeze .", null, 1, 1),
        d.examples().get(0));
    assertEquals(
        GlueExample.classification(1, "The more does Bill smoke .", null, 0, 2),
        d.examples().get(1));
  }

  @Test
  void crlfAndNoTrailingNewline() {
    GlueData d = read(GlueTask.SST2, "train", "sentence\tlabel\r\nfine .\t1\r\nbad .\t0");
    assertEquals(2, d.size());
    assertEquals("fine .", d.examples().get(0).textA());
    assertEquals("bad .", d.examples().get(1).textA());
    assertEquals(3, d.examples().get(1).line());
  }

  @Test
  void trailingBlankLinesAreIgnoredButInnerOnesAreBadRows() {
    assertEquals(1, read(GlueTask.SST2, "dev", "sentence\tlabel\nok\t1\n\n\n").size());
    GlueFormatException e = fails(GlueTask.SST2, "dev", "sentence\tlabel\nok\t1\n\nok\t0\n");
    assertEquals("mem.tsv, line 3: empty line", e.getMessage());
    assertEquals(3, e.line());
    assertEquals("mem.tsv", e.source());
  }

  @Test
  void wrongColumnCountNamesFileLineAndRow() {
    GlueFormatException e = fails(GlueTask.SST2, "dev", "sentence\tlabel\nok\t1\na\tb\t1\n");
    assertEquals(
        "mem.tsv, line 3: expected 2 columns (sentence, label), found 3 columns: a\\tb\\t1",
        e.getMessage());
    GlueFormatException cola = fails(GlueTask.COLA, "dev", "gj04\t1\tThe sailors rode .\n");
    assertEquals(
        "mem.tsv, line 1: expected 4 columns, found 3 columns: gj04\\t1\\tThe sailors rode .",
        cola.getMessage());
  }

  @Test
  void unknownLabelNamesValueAndKnownLabels() {
    GlueFormatException e = fails(GlueTask.SST2, "dev", "sentence\tlabel\nok\t1\nhm\t2\n");
    assertEquals(
        "mem.tsv, line 3: unknown label '2' in column 'label' (labels: 0, 1)", e.getMessage());
    GlueFormatException rte =
        fails(
            GlueTask.RTE,
            "dev",
            "index\tsentence1\tsentence2\tlabel\n0\tA .\tB .\tcontradiction\n");
    assertEquals(
        "mem.tsv, line 2: unknown label 'contradiction' in column 'label' "
            + "(labels: entailment, not_entailment)",
        rte.getMessage());
  }

  private static final String STSB_HEADER =
      "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n";

  private static String stsbRow(String score) {
    return "0\tmain-captions\tMSRvid\t2012test\t0001\tnone\tnone\tA plane is taking off.\t"
        + "An air plane is taking off.\t"
        + score
        + "\n";
  }

  @Test
  void stsbScores() {
    GlueData d =
        read(
            GlueTask.STSB,
            "train",
            STSB_HEADER + stsbRow("5.000") + stsbRow("3.8") + stsbRow("1e-1"));
    assertEquals(3, d.size());
    GlueExample e = d.examples().get(1);
    assertEquals("A plane is taking off.", e.textA());
    assertEquals("An air plane is taking off.", e.textB());
    assertEquals(3.8f, e.score());
    assertEquals(-1, e.label());
    assertTrue(e.isLabelled());
    assertEquals(5.0f, d.scores()[0]);
    assertEquals(0.1f, d.scores()[2]);
    assertTrue(d.labels().isEmpty());
  }

  @Test
  void stsbBadNumbers() {
    for (String bad : List.of("abc", "NaN", "Infinity", "", "1f", "0x1p3", "3,5")) {
      GlueFormatException e =
          fails(GlueTask.STSB, "dev", STSB_HEADER + stsbRow("2.0") + stsbRow(bad));
      assertEquals(
          "mem.tsv, line 3: column 'score' is not a finite decimal number: '" + bad + "'",
          e.getMessage(),
          bad);
    }
  }

  @Test
  void missingHeaderIsReported() {
    GlueFormatException e = fails(GlueTask.SST2, "train", "hide new secretions\t0\nok\t1\n");
    assertEquals(1, e.line());
    assertEquals(
        "mem.tsv, line 1: the SST-2 train file must start with a header line holding the "
            + "column 'sentence'; found [hide new secretions, 0]. Is the header missing?",
        e.getMessage());
    GlueFormatException mrpc = fails(GlueTask.MRPC, "dev", "1\t1\t2\tA .\tB .\n");
    assertTrue(mrpc.getMessage().contains("column '#1 String'"), mrpc.getMessage());
  }

  @Test
  void emptyFile() {
    assertEquals(
        "mem.tsv, line 1: empty file, expected the SST-2 header line",
        fails(GlueTask.SST2, "dev", "").getMessage());
    assertEquals("mem.tsv, line 1: empty file", fails(GlueTask.COLA, "dev", "").getMessage());
    assertEquals(0, read(GlueTask.SST2, "dev", "sentence\tlabel\n").size());
  }

  @Test
  void invalidUtf8IsReportedAtItsLine() {
    StringBuilder good = new StringBuilder("sentence\tlabel\n");
    for (int i = 0; i < 5000; i++) {
      good.append("a fine row with some words in it .\t1\n");
    }
    byte[] head = good.toString().getBytes(StandardCharsets.UTF_8);
    byte[] bytes = java.util.Arrays.copyOf(head, head.length + 6);
    // "a" + a broken 2-byte sequence + "\t1\n" on line 5002
    System.arraycopy(
        new byte[] {'a', (byte) 0xC3, (byte) 0x28, '\t', '1', '\n'}, 0, bytes, head.length, 6);
    GlueFormatException e =
        assertThrows(
            GlueFormatException.class,
            () ->
                GlueReader.of(GlueTask.SST2)
                    .read("dev", new ByteArrayInputStream(bytes), "bad.tsv"));
    assertEquals(5002, e.line());
    assertTrue(e.getMessage().startsWith("bad.tsv, line 5002: not valid UTF-8"), e.getMessage());
  }

  @Test
  void byteStreamLineEndings() {
    byte[] bytes =
        "sentence\tlabel\r\nk\u00f6ln .\t1\rb .\t0\n\nc .\t1".getBytes(StandardCharsets.UTF_8);
    GlueData d =
        GlueReader.of(GlueTask.SST2)
            .withSkipBadRows(true)
            .read("train", new ByteArrayInputStream(bytes), "m");
    assertEquals(
        List.of("k\u00f6ln .", "b .", "c ."),
        d.examples().stream().map(GlueExample::textA).toList());
    assertEquals(List.of(2, 3, 5), d.examples().stream().map(GlueExample::line).toList());
    assertEquals(List.of("line 4: empty line"), d.skippedSamples());
  }

  private static final String QQP_HEADER = "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n";

  @Test
  void qqpSkipsBadRowsByDefaultAndCountsThem() {
    String tsv =
        QQP_HEADER
            + "0\t1\t2\tHow do I learn Java?\tHow can I learn Java?\t1\n"
            + "1\t3\t4\tWhat is a broken\n" // a question split by a newline
            + "question?\tWhat is it?\t0\n"
            + "2\t5\t6\tWhy?\tWhy not?\t0\n"
            + "3\t7\t8\tA?\tB?\t7\n"; // unknown label
    GlueData d = read(GlueTask.QQP, "train", tsv);
    assertEquals(2, d.size());
    assertEquals(3, d.skipped());
    assertEquals(List.of(0, 1), d.examples().stream().map(GlueExample::index).toList());
    assertEquals(List.of(2, 5), d.examples().stream().map(GlueExample::line).toList());
    assertEquals("How can I learn Java?", d.examples().get(0).textB());
    assertEquals(3, d.skippedSamples().size());
    assertTrue(
        d.skippedSamples().get(0).startsWith("line 3: expected 6 columns"),
        d.skippedSamples().get(0));
    assertEquals(
        "line 6: unknown label '7' in column 'is_duplicate' (labels: 0, 1)",
        d.skippedSamples().get(2));

    GlueFormatException e = fails(GlueReader.of(GlueTask.QQP).withSkipBadRows(false), "train", tsv);
    assertEquals(3, e.line());
  }

  @Test
  void skipModeOnOtherTasks() {
    GlueReader reader = GlueReader.of(GlueTask.STSB).withSkipBadRows(true);
    assertTrue(reader.skipBadRows());
    GlueData d =
        reader.read(
            "dev",
            new StringReader(
                STSB_HEADER + stsbRow("x") + stsbRow("1.5") + "short\trow\n" + stsbRow("2.5")),
            "s.tsv");
    assertEquals(2, d.size());
    assertEquals(2, d.skipped());
    assertEquals(1.5f, d.examples().get(0).score());
    assertEquals(0, d.examples().get(0).index());
    assertEquals(3, d.examples().get(0).line());
  }

  @Test
  void skippedSamplesAreBounded() {
    StringBuilder tsv = new StringBuilder("sentence\tlabel\n");
    for (int i = 0; i < 25; i++) {
      tsv.append("x\t9\n");
    }
    GlueData d =
        GlueReader.of(GlueTask.SST2)
            .withSkipBadRows(true)
            .read("train", new StringReader(tsv.toString()), "m");
    assertEquals(25, d.skipped());
    assertEquals(0, d.size());
    assertEquals(GlueData.MAX_SKIPPED_SAMPLES, d.skippedSamples().size());
  }

  private static final String MNLI_DEV_HEADER =
      "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\t"
          + "sentence2_binary_parse\tsentence1_parse\tsentence2_parse\tsentence1\tsentence2\tlabel1\t"
          + "label2\tlabel3\tlabel4\tlabel5\tgold_label\n";

  private static String mnliRow(String gold) {
    return "0\t63735\t63735n\tslate\t( ( The ) )\t( x )\t(ROOT)\t(ROOT)\tThe new rights are nice enough\t"
        + "Everyone really likes the newest benefits\tneutral\tentailment\tneutral\tneutral\tneutral\t"
        + gold
        + "\n";
  }

  @Test
  void mnliGoldLabelIsLastColumnAndLabelOrderCanBeOverridden() {
    String tsv =
        MNLI_DEV_HEADER + mnliRow("neutral") + mnliRow("contradiction") + mnliRow("entailment");
    GlueData d = read(GlueTask.MNLI, "dev_matched", tsv);
    assertEquals(List.of(1, 2, 0), d.examples().stream().map(GlueExample::label).toList());
    assertEquals("The new rights are nice enough", d.examples().get(0).textA());
    assertEquals("Everyone really likes the newest benefits", d.examples().get(0).textB());

    List<String> alphabetical = List.of("contradiction", "entailment", "neutral");
    GlueData legacy =
        GlueReader.of(GlueTask.MNLI)
            .withLabels(alphabetical)
            .read("dev_mismatched", new StringReader(tsv), "m");
    assertEquals(List.of(2, 0, 1), legacy.examples().stream().map(GlueExample::label).toList());
    assertEquals(alphabetical, legacy.labels());
  }

  @Test
  void labelOverrideIsValidated() {
    IllegalArgumentException regression =
        assertThrows(
            IllegalArgumentException.class,
            () -> GlueReader.of(GlueTask.STSB).withLabels(List.of("0", "1")));
    assertEquals(
        "GLUE task STS-B is a regression task and has no labels, got [0, 1]",
        regression.getMessage());
    IllegalArgumentException dup =
        assertThrows(
            IllegalArgumentException.class,
            () -> GlueReader.of(GlueTask.SST2).withLabels(List.of("1", "1")));
    assertEquals("labels for GLUE task SST-2 contain duplicates: [1, 1]", dup.getMessage());
    assertThrows(
        IllegalArgumentException.class,
        () -> GlueReader.of(GlueTask.SST2).withLabels(List.of("1")));
    GlueData flipped =
        GlueReader.of(GlueTask.SST2)
            .withLabels(List.of("1", "0"))
            .read("dev", new StringReader("sentence\tlabel\na\t1\nb\t0\n"), "m");
    assertEquals(List.of(0, 1), flipped.examples().stream().map(GlueExample::label).toList());
  }

  @Test
  void testSplitsAreUnlabelled() {
    GlueData sst =
        read(GlueTask.SST2, "test", "index\tsentence\n0\tuneasy mishmash .\n1\tgood .\n");
    assertEquals(2, sst.size());
    assertEquals("uneasy mishmash .", sst.examples().get(0).textA());
    assertEquals(-1, sst.examples().get(0).label());
    assertFalse(sst.examples().get(0).isLabelled());
    GlueData sts =
        read(
            GlueTask.STSB,
            "test",
            "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\n"
                + "0\tg\tf\ty\t0024\tnone\tnone\tA girl is styling her hair.\tA girl is brushing her hair.\n");
    assertTrue(Float.isNaN(sts.examples().get(0).score()));
    assertEquals("A girl is brushing her hair.", sts.examples().get(0).textB());
    assertFalse(sts.examples().get(0).isLabelled());
    GlueData cola =
        read(GlueTask.COLA, "test", "index\tsentence\n0\tBill whistled past the house.\n");
    assertEquals("Bill whistled past the house.", cola.examples().get(0).textA());
    assertNull(cola.examples().get(0).textB());
  }

  @Test
  void readsSplitFromGlueDirectory(@TempDir Path glue) throws Exception {
    Files.createDirectories(glue.resolve("RTE"));
    Files.writeString(
        glue.resolve("RTE/dev.tsv"),
        "index\tsentence1\tsentence2\tlabel\n0\tDana Reeve died.\tReeve had an accident.\tnot_entailment\n");
    GlueData d = GlueReader.of(GlueTask.RTE).readSplit(glue, "dev");
    assertEquals(glue.resolve("RTE/dev.tsv").toString(), d.source());
    assertEquals(
        GlueExample.classification(0, "Dana Reeve died.", "Reeve had an accident.", 1, 2),
        d.examples().get(0));
    UncheckedIOException missing =
        assertThrows(
            UncheckedIOException.class, () -> GlueReader.of(GlueTask.RTE).readSplit(glue, "train"));
    assertTrue(
        missing.getMessage().startsWith(glue.resolve("RTE/train.tsv") + ": cannot read"),
        missing.getMessage());
    GlueFormatException bad =
        assertThrows(
            GlueFormatException.class,
            () -> GlueReader.of(GlueTask.SST2).read("dev", glue.resolve("RTE/dev.tsv")));
    assertTrue(
        bad.getMessage().startsWith(glue.resolve("RTE/dev.tsv") + ", line 1: "), bad.getMessage());
  }
}
