package io.capprune.core.text;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.capprune.core.checkpoint.CheckpointException;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class BertTokenizerTest {

  /** A tiny vocabulary; the test ids below are positions in this list. */
  static final List<String> VOCAB =
      List.of(
          "[PAD]",
          "[UNK]",
          "[CLS]",
          "[SEP]",
          "[MASK]", // 0-4
          "the",
          "cafe",
          "un",
          "##want",
          "##ed", // 5-9
          "runn",
          "##ing",
          ",",
          ".",
          "!", // 10-14
          "hello",
          "world",
          "中",
          "国",
          "a", // 15-19
          "##a",
          "$",
          "—",
          "¿",
          "σ", // 20-24
          "ς",
          "οδοσ",
          "é",
          "naive",
          "[", // 25-29
          "]",
          "sep",
          "##s",
          "q",
          "x", // 30-34
          "Cafe",
          "ぁ",
          "##ぁ",
          "€",
          "a€b", // 35-39
          "b",
          "c",
          "d",
          "e",
          "\uD835\uDC00", // 40-44
          "##\uD835\uDC00"); // 45

  static final BertTokenizer UNCASED = new BertTokenizer(VOCAB);
  static final BertTokenizer CASED = new BertTokenizer(VOCAB, false);

  private static List<String> tok(String text) {
    return UNCASED.tokenize(text);
  }

  @Test
  void wordPieceSplitsGreedilyWithContinuation() {
    assertEquals(List.of("un", "##want", "##ed", ",", "runn", "##ing"), tok("unwanted, running"));
    assertArrayEquals(new int[] {7, 8, 9, 12, 10, 11}, UNCASED.tokenIds("unwanted, running"));
  }

  @Test
  void aWordWithAnUncoveredPieceIsOneUnk() {
    // "unwantedx": un ##want ##ed match, then "x" has no "##x": the whole word becomes [UNK]
    assertEquals(List.of("the", "[UNK]", "the"), tok("the unwantedx the"));
    assertEquals(List.of("[UNK]"), tok("zebra"));
  }

  @Test
  void lowerCasesAndStripsAccentsWhenUncased() {
    assertEquals(List.of("the", "cafe", "hello"), tok("THE Café HeLLo"));
    // decomposed input (e + combining acute) strips the same way
    assertEquals(List.of("cafe"), tok("Cafe\u0301"));
    assertEquals(List.of("naive"), tok("naïve"));
  }

  @Test
  void keepsCaseAndAccentsWhenCased() {
    assertEquals(List.of("Cafe", "[UNK]", "the"), CASED.tokenize("Cafe Café the"));
    assertEquals(List.of("é"), CASED.tokenize("é"));
  }

  @Test
  void lowerCasesCharacterByCharacterLikeTheFastTokenizer() {
    // Python's str.lower() would give "οδος" (final sigma); the fast tokenizer gives "οδοσ"
    assertEquals(List.of("οδοσ"), tok("ΟΔΟΣ"));
  }

  @Test
  void splitsPunctuationAsciiAndUnicode() {
    assertEquals(List.of("hello", ",", "world", "!"), tok("hello,world!"));
    assertEquals(List.of("hello", "—", "world"), tok("hello—world")); // U+2014, Pd
    assertEquals(List.of("¿", "hello"), tok("¿hello")); // Po
    assertEquals(List.of("$", "a"), tok("$a")); // ASCII 36, Unicode Sc
    assertEquals(List.of(".", ".", "."), tok("...")); // one token per character
    // a non-ASCII symbol (Sc) is not punctuation: it stays inside the word
    assertEquals(List.of("a€b"), tok("a€b"));
    assertTrue(BertTokenizer.isPunctuation('^'));
    assertTrue(BertTokenizer.isPunctuation('`'));
    assertFalse(BertTokenizer.isPunctuation('€'));
  }

  @Test
  void splitsCjkCharactersOut() {
    assertEquals(List.of("中", "国", "hello"), tok("中国hello"));
    // hiragana is not in the CJK ideograph blocks: not split
    assertEquals(List.of("ぁ", "##ぁ"), tok("ぁぁ"));
    assertTrue(BertTokenizer.isChineseChar(0x4E2D));
    assertFalse(BertTokenizer.isChineseChar(0x2B820)); // the fast tokenizer's range starts at 2B920
    assertTrue(BertTokenizer.isChineseChar(0x2B920));
  }

  @Test
  void dropsControlCharactersAndMapsWhitespace() {
    assertEquals(List.of("hello"), tok("hel\u0000lo"));
    assertEquals(List.of("hello"), tok("hel\uFFFDlo"));
    assertEquals(List.of("hello"), tok("hel\u200Blo")); // zero width space, Cf
    assertEquals(List.of("hello"), tok("\uFEFFhello")); // BOM, Cf
    assertEquals(List.of("hello"), tok("hel\u0007lo")); // BEL, Cc
    assertEquals(List.of("hello", "world"), tok("hello\tworld"));
    assertEquals(List.of("hello", "world"), tok("hello\u00A0world")); // no-break space, Zs
    assertEquals(List.of("hello", "world"), tok("hello\u2028world")); // line separator, Zl
    assertEquals(List.of("hello", "world"), tok("\r\n hello \n\n world  "));
    assertEquals(List.of(), tok(""));
    assertEquals(List.of(), tok(" \t\u0000 "));
  }

  @Test
  void longWordsBecomeUnk() {
    String hundred = "a".repeat(100);
    List<String> pieces = tok(hundred);
    assertEquals(100, pieces.size());
    assertEquals("a", pieces.get(0));
    assertEquals("##a", pieces.get(99));
    assertEquals(List.of("[UNK]"), tok(hundred + "a"));
    // counted in code points: 100 supplementary characters (200 chars) are still tokenized
    String bold = "\uD835\uDC00"; // U+1D400, no case, no decomposition
    assertEquals(100, tok(bold.repeat(100)).size());
    assertEquals("##" + bold, tok(bold.repeat(100)).get(99));
    assertEquals(List.of("[UNK]"), tok(bold.repeat(101)));
  }

  @Test
  void specialTokensInTheTextAreKeptWhole() {
    assertEquals(List.of("a", "[SEP]", "b"), tok("a [SEP] b"));
    assertEquals(List.of("a", "[MASK]", "b"), tok("a[MASK]b"));
    // matched on the raw text, case-sensitive: lower case is ordinary text
    assertEquals(List.of("[", "sep", "]"), tok("[sep]"));
    assertEquals(List.of("[", "a"), tok("[a"));
  }

  @Test
  void encodesSingleSentence() {
    Encoding e = UNCASED.encode("hello world");
    assertArrayEquals(new int[] {2, 15, 16, 3}, e.inputIds());
    assertArrayEquals(new int[] {0, 0, 0, 0}, e.tokenTypeIds());
    assertArrayEquals(new int[] {1, 1, 1, 1}, e.attentionMask());
    assertEquals(4, e.realLength());
  }

  @Test
  void encodesPairWithTokenTypes() {
    Encoding e = UNCASED.encode("hello", "the world", 128);
    assertArrayEquals(new int[] {2, 15, 3, 5, 16, 3}, e.inputIds());
    assertArrayEquals(new int[] {0, 0, 0, 1, 1, 1}, e.tokenTypeIds());
    assertArrayEquals(new int[] {1, 1, 1, 1, 1, 1}, e.attentionMask());
  }

  @Test
  void truncatesSingleSentenceFromTheEnd() {
    Encoding e = UNCASED.encode("a b c d e", 5);
    assertArrayEquals(new int[] {2, 19, 40, 41, 3}, e.inputIds());
  }

  @Test
  void truncatesPairLongestFirstAsTheFastTokenizer() {
    // a has 6 tokens, b 2, budget 8 - 3 = 5: only a is cut, to 5 - 2 = 3
    Encoding e = UNCASED.encode("a b c d e a", "the the", 8);
    assertArrayEquals(new int[] {2, 19, 40, 41, 3, 5, 5, 3}, e.inputIds());
    assertArrayEquals(new int[] {0, 0, 0, 0, 0, 1, 1, 1}, e.tokenTypeIds());
    // b longer: only b is cut
    e = UNCASED.encode("the", "a b c d e", 6);
    assertArrayEquals(new int[] {2, 5, 3, 19, 40, 3}, e.inputIds());
    // both long, even budget 4: two each
    e = UNCASED.encode("a b c d e", "a b c d e", 7);
    assertArrayEquals(new int[] {2, 19, 40, 3, 19, 40, 3}, e.inputIds());
  }

  @Test
  void oddBudgetGoesToTheLongerAndToBOnATie() {
    // tie, budget 5: a keeps 2, b keeps 3 (BERT's truncate_seq_pair would keep 3 and 2)
    assertArrayEquals(new int[] {2, 3}, BertTokenizer.truncatePair(5, 5, 5));
    // a longer: a gets the extra token
    assertArrayEquals(new int[] {3, 2}, BertTokenizer.truncatePair(6, 5, 5));
    // b longer: b gets it
    assertArrayEquals(new int[] {2, 3}, BertTokenizer.truncatePair(5, 6, 5));
    // the shorter fits in half the budget: kept whole
    assertArrayEquals(new int[] {2, 5}, BertTokenizer.truncatePair(2, 9, 7));
    assertArrayEquals(new int[] {60, 65}, BertTokenizer.truncatePair(60, 100, 125));
    // shorter just over half: both cut, 62 + 63
    assertArrayEquals(new int[] {62, 63}, BertTokenizer.truncatePair(63, 100, 125));
    // one side alone longer than the budget
    assertArrayEquals(new int[] {4, 3}, BertTokenizer.truncatePair(9, 8, 7));
    // nothing to do
    assertArrayEquals(new int[] {3, 4}, BertTokenizer.truncatePair(3, 4, 7));
    // zero budget
    assertArrayEquals(new int[] {0, 0}, BertTokenizer.truncatePair(3, 4, 0));
  }

  @Test
  void padsWithPadIdTypeZeroMaskZero() {
    Encoding e = UNCASED.encode("hello", "world", 16).padded(8, UNCASED.padId());
    assertArrayEquals(new int[] {2, 15, 3, 16, 3, 0, 0, 0}, e.inputIds());
    assertArrayEquals(new int[] {0, 0, 0, 1, 1, 0, 0, 0}, e.tokenTypeIds());
    assertArrayEquals(new int[] {1, 1, 1, 1, 1, 0, 0, 0}, e.attentionMask());
    assertEquals(8, e.length());
    assertEquals(5, e.realLength());
    assertEquals(e, UNCASED.encodePadded("hello", "world", 8));
    // a non-zero pad id is written too
    assertArrayEquals(new int[] {2, 15, 3, 7, 7}, UNCASED.encode("hello").padded(5, 7).inputIds());
    Encoding same = UNCASED.encode("hello");
    assertSame(same, same.padded(3, 0));
    IllegalArgumentException ex =
        assertThrows(IllegalArgumentException.class, () -> same.padded(2, 0));
    assertEquals(
        "cannot pad an encoding of 3 tokens to 2: truncate when encoding", ex.getMessage());
  }

  @Test
  void rejectsTooSmallMaxSeqLength() {
    IllegalArgumentException ex =
        assertThrows(IllegalArgumentException.class, () -> UNCASED.encode("a", "b", 2));
    assertEquals(
        "maxSeqLength 2 leaves no room for the 3 special tokens of a pair", ex.getMessage());
    assertArrayEquals(new int[] {2, 3, 3}, UNCASED.encode("a", "b", 3).inputIds());
    assertArrayEquals(new int[] {2, 3}, UNCASED.encode("a b", 2).inputIds());
  }

  @Test
  void readsVocabTxtAndReportsBadLines(@TempDir Path dir) throws Exception {
    Path ok = dir.resolve("vocab.txt");
    Files.writeString(ok, String.join("\n", VOCAB) + "\n");
    BertTokenizer t = BertTokenizer.fromVocabFile(ok, true);
    assertEquals(VOCAB.size(), t.vocabSize());
    assertEquals(VOCAB, t.vocabulary());
    assertEquals(List.of("un", "##want", "##ed"), t.tokenize("Unwanted"));
    assertEquals(0, t.padId());
    assertEquals(1, t.unkId());
    assertEquals(2, t.clsId());
    assertEquals(3, t.sepId());
    assertEquals(16, t.tokenId("world"));
    assertEquals(-1, t.tokenId("zebra"));

    // CRLF line ends are accepted
    Path crlf = dir.resolve("crlf.txt");
    Files.writeString(crlf, String.join("\r\n", VOCAB));
    assertEquals(VOCAB, BertTokenizer.fromVocabFile(crlf, true).vocabulary());

    Path dup = dir.resolve("dup.txt");
    Files.writeString(dup, "[PAD]\n[UNK]\n[CLS]\n[SEP]\nthe\nthe\n");
    CheckpointException e1 =
        assertThrows(CheckpointException.class, () -> BertTokenizer.fromVocabFile(dup, true));
    assertEquals(dup + ": line 6: token 'the' already on line 5", e1.getMessage());

    Path empty = dir.resolve("empty.txt");
    Files.writeString(empty, "[PAD]\n[UNK]\n\n[CLS]\n[SEP]\n");
    CheckpointException e2 =
        assertThrows(CheckpointException.class, () -> BertTokenizer.fromVocabFile(empty, true));
    assertEquals(empty + ": line 3: empty vocabulary entry", e2.getMessage());

    Path noUnk = dir.resolve("nounk.txt");
    Files.writeString(noUnk, "[PAD]\n[CLS]\n[SEP]\n");
    CheckpointException e3 =
        assertThrows(CheckpointException.class, () -> BertTokenizer.fromVocabFile(noUnk, true));
    assertEquals(noUnk + ": vocabulary has no [UNK] token", e3.getMessage());

    CheckpointException e4 =
        assertThrows(
            CheckpointException.class,
            () ->
                BertTokenizer.fromVocabStream(
                    new ByteArrayInputStream(new byte[] {'a', '\n', (byte) 0xC3}),
                    "s3a://bucket/vocab.txt",
                    true));
    assertEquals("s3a://bucket/vocab.txt: vocabulary is not valid UTF-8", e4.getMessage());

    CheckpointException e5 =
        assertThrows(
            CheckpointException.class,
            () ->
                BertTokenizer.fromVocabStream(
                    new ByteArrayInputStream("\uFEFF[PAD]\n".getBytes(StandardCharsets.UTF_8)),
                    "v.txt",
                    true));
    assertEquals("v.txt: line 1: vocabulary starts with a byte order mark", e5.getMessage());

    Path missing = dir.resolve("missing.txt");
    CheckpointException e6 =
        assertThrows(CheckpointException.class, () -> BertTokenizer.fromVocabFile(missing, true));
    assertTrue(e6.getMessage().startsWith(missing + ": cannot read vocabulary"), e6.getMessage());
  }

  @Test
  void readsTokenizerJsonAndReportsUnsupportedKeys() {
    String vocab = "{\"[PAD]\":0,\"[UNK]\":1,\"[CLS]\":2,\"[SEP]\":3,\"hello\":4,\"##s\":5}";
    String json = tokenizerJson(vocab, "true");
    BertTokenizer t = BertTokenizer.fromTokenizerJson(json, "tokenizer.json");
    assertTrue(t.doLowerCase());
    assertEquals(List.of("hello", "##s"), t.tokenize("HELLOS"));
    assertFalse(BertTokenizer.fromTokenizerJson(tokenizerJson(vocab, "false"), "t").doLowerCase());

    CheckpointException gap =
        assertThrows(
            CheckpointException.class,
            () ->
                BertTokenizer.fromTokenizerJson(
                    tokenizerJson("{\"[PAD]\":0,\"[UNK]\":1,\"[CLS]\":2,\"[SEP]\":7}", "true"),
                    "m/tokenizer.json"));
    assertEquals(
        "m/tokenizer.json: key 'model.vocab': token '[SEP]' has id 7; ids must be 0..3"
            + " without gaps or repeats",
        gap.getMessage());

    CheckpointException bpe =
        assertThrows(
            CheckpointException.class,
            () ->
                BertTokenizer.fromTokenizerJson(
                    json.replace("\"WordPiece\"", "\"BPE\""), "t.json"));
    assertEquals("t.json: key 'model.type': expected \"WordPiece\", got \"BPE\"", bpe.getMessage());

    CheckpointException bad =
        assertThrows(
            CheckpointException.class,
            () -> BertTokenizer.fromTokenizerJson("{not json", "t.json"));
    assertTrue(bad.getMessage().startsWith("t.json: not valid JSON"), bad.getMessage());
  }

  private static String tokenizerJson(String vocab, String lowercase) {
    return "{\"normalizer\":{\"type\":\"BertNormalizer\",\"clean_text\":true,"
        + "\"handle_chinese_chars\":true,\"strip_accents\":null,\"lowercase\":"
        + lowercase
        + "},"
        + "\"pre_tokenizer\":{\"type\":\"BertPreTokenizer\"},"
        + "\"model\":{\"type\":\"WordPiece\",\"unk_token\":\"[UNK]\","
        + "\"continuing_subword_prefix\":\"##\",\"max_input_chars_per_word\":100,"
        + "\"vocab\":"
        + vocab
        + "}}";
  }

  @Test
  void rejectsDuplicateTokensInAList() {
    IllegalArgumentException ex =
        assertThrows(
            IllegalArgumentException.class,
            () -> new BertTokenizer(List.of("[PAD]", "[UNK]", "[CLS]", "[SEP]", "x", "x")));
    assertEquals("vocabulary token 'x' appears twice, at ids 4 and 5", ex.getMessage());
  }

  @Test
  void isSerializableAndThreadSafe() throws Exception {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (ObjectOutputStream out = new ObjectOutputStream(bytes)) {
      out.writeObject(UNCASED);
    }
    BertTokenizer copy;
    try (ObjectInputStream in =
        new ObjectInputStream(new ByteArrayInputStream(bytes.toByteArray()))) {
      copy = (BertTokenizer) in.readObject();
    }
    assertEquals(
        UNCASED.encode("Café, unwanted 中国!", "a b", 64),
        copy.encode("Café, unwanted 中国!", "a b", 64));

    List<String> texts = new ArrayList<>();
    for (int i = 0; i < 2000; i++) {
      texts.add(
          "the Café " + "a".repeat(i % 7) + " unwanted, running! 中国 " + (i % 3 == 0 ? "x" : "$"));
    }
    List<Encoding> expected = texts.stream().map(s -> UNCASED.encode(s, "hello", 32)).toList();
    ExecutorService pool = Executors.newFixedThreadPool(4);
    try {
      List<Future<List<Encoding>>> futures = new ArrayList<>();
      for (int t = 0; t < 4; t++) {
        futures.add(
            pool.submit(() -> texts.stream().map(s -> UNCASED.encode(s, "hello", 32)).toList()));
      }
      for (Future<List<Encoding>> f : futures) {
        assertEquals(expected, f.get());
      }
    } finally {
      pool.shutdownNow();
    }
  }
}
