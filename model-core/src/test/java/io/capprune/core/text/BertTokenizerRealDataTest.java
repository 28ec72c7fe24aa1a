package io.capprune.core.text;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The tokenizer against real data: the ids of the model's reference outputs, and Hugging Face's
 * Rust tokenizer (through DJL) on every GLUE sentence and pair in ../shared/data.
 */
@Tag("realdata")
class BertTokenizerRealDataTest {

  private static Path data;
  private static Path model;
  private static BertTokenizer fromVocab;
  private static BertTokenizer fromJson;

  @BeforeAll
  static void load() {
    String dir = System.getProperty("capprune.sharedData");
    if (dir == null || !Files.isDirectory(Path.of(dir))) {
      fail("system property capprune.sharedData must name the shared data directory, got " + dir);
    }
    data = Path.of(dir);
    model = data.resolve("models/all-MiniLM-L6-v2");
    fromVocab = BertTokenizer.fromVocabFile(model.resolve("vocab.txt"), true);
    fromJson = BertTokenizer.fromTokenizerJson(model.resolve("tokenizer.json"));
  }

  @Test
  void vocabTxtAndTokenizerJsonGiveTheSameVocabulary() {
    assertEquals(30_522, fromVocab.vocabSize());
    assertEquals(fromVocab.vocabulary(), fromJson.vocabulary());
    assertEquals(0, fromVocab.padId());
    assertEquals(100, fromVocab.unkId());
    assertEquals(101, fromVocab.clsId());
    assertEquals(102, fromVocab.sepId());
  }

  @Test
  void reproducesTheIdsOfTheReferenceOutputs() throws IOException {
    JsonNode root = new ObjectMapper().readTree(model.resolve("expected-outputs.json").toFile());
    int maxLength = root.get("max_length").asInt();
    assertEquals(16, maxLength);
    int n = 0;
    for (JsonNode ex : root.get("examples")) {
      String text = ex.get("text").asText();
      int[] ids = toInts(ex.get("input_ids"));
      int[] mask = toInts(ex.get("attention_mask"));
      for (BertTokenizer t : List.of(fromVocab, fromJson)) {
        Encoding e = t.encodePadded(text, null, maxLength);
        assertArrayEquals(ids, e.inputIds(), text);
        assertArrayEquals(mask, e.attentionMask(), text);
        assertArrayEquals(new int[maxLength], e.tokenTypeIds(), text);
      }
      n++;
    }
    assertEquals(3, n);
  }

  private static int[] toInts(JsonNode array) {
    int[] out = new int[array.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = array.get(i).asInt();
    }
    return out;
  }

  /** One GLUE file: its sentences, or its sentence pairs. */
  private record Examples(String name, List<String[]> rows) {}

  @Test
  void agreesWithHuggingFaceOnEveryGlueDevSentenceAndPair() throws IOException {
    List<Examples> sets =
        List.of(
            new Examples("SST-2/dev", readTsv("SST-2/dev.tsv", true, 0, -1)),
            new Examples("CoLA/dev", readTsv("CoLA/dev.tsv", false, 3, -1)),
            new Examples("MRPC/dev", readTsv("MRPC/dev.tsv", true, 3, 4)),
            new Examples("RTE/dev", readTsv("RTE/dev.tsv", true, 1, 2)));
    assertEquals(872, sets.get(0).rows().size());
    assertEquals(1043, sets.get(1).rows().size());
    assertEquals(408, sets.get(2).rows().size());
    assertEquals(277, sets.get(3).rows().size());
    compareWithHuggingFace(sets);
  }

  /** Beyond the dev sets: the training files too, 82k more rows, at little cost. */
  @Test
  void agreesWithHuggingFaceOnEveryGlueTrainSentenceAndPair() throws IOException {
    List<Examples> sets =
        List.of(
            new Examples("SST-2/train", readTsv("SST-2/train.tsv", true, 0, -1)),
            new Examples("CoLA/train", readTsv("CoLA/train.tsv", false, 3, -1)),
            new Examples("MRPC/train", readTsv("MRPC/train.tsv", true, 3, 4)),
            new Examples("RTE/train", readTsv("RTE/train.tsv", true, 1, 2)));
    assertEquals(67_349, sets.get(0).rows().size());
    assertEquals(8_551, sets.get(1).rows().size());
    assertEquals(3_668, sets.get(2).rows().size());
    assertEquals(2_490, sets.get(3).rows().size());
    compareWithHuggingFace(sets);
  }

  /**
   * Compares every sentence alone and every pair, untruncated (max 512) and truncated to 32 (which
   * cuts most pairs and exercises longest-first), ids, token types and masks.
   */
  private static void compareWithHuggingFace(List<Examples> sets) throws IOException {
    for (int maxLength : new int[] {512, 32}) {
      try (HuggingFaceTokenizer hf =
          HuggingFaceTokenizer.newInstance(
              model.resolve("tokenizer.json"),
              Map.of(
                  "addSpecialTokens",
                  "true",
                  "truncation",
                  "LONGEST_FIRST",
                  "maxLength",
                  Integer.toString(maxLength),
                  "padding",
                  "DO_NOT_PAD"))) {
        for (Examples set : sets) {
          int singles = 0;
          int pairs = 0;
          int truncated = 0;
          int bertRuleDiffers = 0;
          List<String> mismatches = new ArrayList<>();
          for (String[] row : set.rows()) {
            for (String sentence : row) {
              Encoding ours = fromVocab.encode(sentence, maxLength);
              check(set.name() + " \"" + sentence + "\"", ours, hf.encode(sentence), mismatches);
              singles++;
            }
            if (row.length == 2) {
              Encoding ours = fromVocab.encode(row[0], row[1], maxLength);
              check(
                  set.name() + " \"" + row[0] + "\" / \"" + row[1] + "\"",
                  ours,
                  hf.encode(row[0], row[1]),
                  mismatches);
              pairs++;
              int n1 = fromVocab.tokenIds(row[0]).length;
              int n2 = fromVocab.tokenIds(row[1]).length;
              if (n1 + n2 + 3 > maxLength) {
                truncated++;
              }
              int budget = maxLength - 3;
              if (!Arrays.equals(
                  truncateSeqPair(n1, n2, budget), BertTokenizer.truncatePair(n1, n2, budget))) {
                bertRuleDiffers++;
              }
            }
          }
          System.out.printf(
              "tokenizer vs HuggingFace, %s, maxLength %d: %d sentences, %d pairs"
                  + " (%d truncated, %d where BERT's truncate_seq_pair would cut differently),"
                  + " %d mismatches%n",
              set.name(), maxLength, singles, pairs, truncated, bertRuleDiffers, mismatches.size());
          if (!mismatches.isEmpty()) {
            fail(
                mismatches.size()
                    + " mismatches in "
                    + set.name()
                    + " at maxLength "
                    + maxLength
                    + ", first ones:\n"
                    + String.join("\n", mismatches.subList(0, Math.min(5, mismatches.size()))));
          }
        }
      }
    }
  }

  /** BERT's original rule (run_classifier.py): pop from the longer, from b on a tie. */
  private static int[] truncateSeqPair(int n1, int n2, int budget) {
    while (n1 + n2 > budget) {
      if (n1 > n2) {
        n1--;
      } else {
        n2--;
      }
    }
    return new int[] {n1, n2};
  }

  /** Characters the GLUE files hardly have: accents, scripts, controls, marks, special tokens. */
  @Test
  void agreesWithHuggingFaceOnUnusualText() throws IOException {
    List<String> texts =
        List.of(
            "ΟΔΟΣ Σίσυφος",
            "Café naïve résumé",
            "Cafe\u0301",
            "中国hello 日本語テキスト",
            "\uD86E\uDC20\uD86E\uDD20",
            "\u2F00 \uF900\uFA0E",
            "hel\u0000lo wo\uFFFDrld",
            "a\u200Bb \uFEFFc \u00ADd",
            "x\u0007y\u001Fz\u007F",
            "a\u00A0b\u2028c\u3000d\u0085e\u000Bf\u000Cg",
            "tab\tnew\nline\r\nend",
            "a [SEP] b [sep] [CLS][MASK]x [UNK] [PAD]",
            "[[SEP]] [ SEP ]",
            "a".repeat(101),
            "b".repeat(100),
            "¿Qué? ¡Sí! «quoted» „x“ ‘y’ – — … · ‧",
            "$5 + €5 = £5 ^_^ `x` ~y~ |z| <a> @b #c %d &e *f",
            "İstanbul STRASSE Straße ẞ ǅ ǈ ﬁ ﬀ ＡＢＣ x² ℌ",
            "한국어 조선말",
            "こんにちは、世界。",
            "مَرْحَبًا بِكُمْ",
            "नमस्ते दुनिया",
            "สวัสดีครับ",
            "Привет, мир! ЁЖИК",
            "שָׁלוֹם",
            "👍🏽 🇫🇷 ❤️ 👨‍👩‍👧",
            "\uE000\uF8FF private",
            "\u0378\u0380 unassigned",
            "\u0301 \u0301a",
            "don't can't \"quoted\" (paren) [bracket] {brace}",
            "U.S.A. e-mail 3.14 1,000,000",
            "   ",
            "",
            "\t\n",
            "a\u0300\u0301\u0302\u0303",
            "Ⅻ ⅻ ① ⑴",
            "\u0130\u0131 ı i");
    try (HuggingFaceTokenizer hf =
        HuggingFaceTokenizer.newInstance(
            model.resolve("tokenizer.json"),
            Map.of("addSpecialTokens", "true", "truncation", "false", "padding", "DO_NOT_PAD"))) {
      List<String> mismatches = new ArrayList<>();
      for (String t : texts) {
        check("\"" + t + "\"", fromVocab.encode(t), hf.encode(t), mismatches);
        check(
            "\"" + t + "\" / \"ΟΔΟΣ\"",
            fromVocab.encode(t, "ΟΔΟΣ", 512),
            hf.encode(t, "ΟΔΟΣ"),
            mismatches);
      }
      System.out.printf(
          "tokenizer vs HuggingFace, unusual text: %d strings, %d mismatches%n",
          texts.size(), mismatches.size());
      if (!mismatches.isEmpty()) {
        fail(mismatches.size() + " mismatches:\n" + String.join("\n", mismatches));
      }
    }
  }

  private static void check(
      String what,
      Encoding ours,
      ai.djl.huggingface.tokenizers.Encoding theirs,
      List<String> mismatches) {
    int[] ids = Arrays.stream(theirs.getIds()).mapToInt(Math::toIntExact).toArray();
    int[] types = Arrays.stream(theirs.getTypeIds()).mapToInt(Math::toIntExact).toArray();
    int[] mask = Arrays.stream(theirs.getAttentionMask()).mapToInt(Math::toIntExact).toArray();
    if (!Arrays.equals(ids, ours.inputIds())
        || !Arrays.equals(types, ours.tokenTypeIds())
        || !Arrays.equals(mask, ours.attentionMask())) {
      mismatches.add(
          what
              + "\n  ours "
              + Arrays.toString(ours.inputIds())
              + " types "
              + Arrays.toString(ours.tokenTypeIds())
              + "\n  hf   "
              + Arrays.toString(ids)
              + " types "
              + Arrays.toString(types));
    }
  }

  /**
   * Reads the text columns of a GLUE TSV: tab-separated, no quoting, MRPC's header starts with a
   * byte order mark. The GLUE readers proper live elsewhere; this is just enough for the test.
   *
   * @param second the second sentence's column, or -1 for single-sentence tasks
   */
  private static List<String[]> readTsv(String file, boolean header, int first, int second)
      throws IOException {
    Path path = data.resolve("glue").resolve(file);
    List<String> lines = Files.readAllLines(path, StandardCharsets.UTF_8);
    List<String[]> rows = new ArrayList<>();
    int needed = Math.max(first, second) + 1;
    for (int i = header ? 1 : 0; i < lines.size(); i++) {
      String line = lines.get(i);
      if (line.isEmpty()) {
        continue;
      }
      String[] cols = line.split("\t", -1);
      assertTrue(
          cols.length >= needed,
          path + ": line " + (i + 1) + ": " + cols.length + " columns, expected " + needed);
      rows.add(second < 0 ? new String[] {cols[first]} : new String[] {cols[first], cols[second]});
    }
    return rows;
  }

  /**
   * Prints throughput figures; asserts only that both tokenizers produced the same number of ids.
   */
  @Test
  void benchmarkSst2Train() throws IOException {
    List<String> sentences = new ArrayList<>();
    for (String[] row : readTsv("SST-2/train.tsv", true, 0, -1)) {
      sentences.add(row[0]);
    }
    long ours = 0;
    for (int round = 0; round < 3; round++) { // the first rounds warm up the JIT
      long t0 = System.nanoTime();
      ours = 0;
      for (String s : sentences) {
        ours += fromVocab.encode(s, 128).length();
      }
      System.out.printf(
          "tokenizer benchmark: own BertTokenizer, SST-2 train, %d sentences,"
              + " %d ids, round %d: %.0f ms%n",
          sentences.size(), ours, round, (System.nanoTime() - t0) / 1e6);
    }
    long theirs = 0;
    try (HuggingFaceTokenizer hf =
        HuggingFaceTokenizer.newInstance(
            model.resolve("tokenizer.json"),
            Map.of("truncation", "LONGEST_FIRST", "maxLength", "128", "padding", "DO_NOT_PAD"))) {
      long t0 = System.nanoTime();
      for (String s : sentences) {
        theirs += hf.encode(s).getIds().length;
      }
      System.out.printf(
          "tokenizer benchmark: DJL HuggingFaceTokenizer (Rust, JNI), same input:" + " %.0f ms%n",
          (System.nanoTime() - t0) / 1e6);
    }
    assertEquals(theirs, ours);
  }
}
