package io.capprune.core.text;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.capprune.core.checkpoint.CheckpointException;
import java.io.IOException;
import java.io.InputStream;
import java.io.Serializable;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.text.Normalizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * BERT's WordPiece tokenizer, producing the same ids as Hugging Face's {@code BertTokenizerFast}
 * (the Rust {@code tokenizers} pipeline that {@code transformers} uses by default, and that {@code
 * tokenizer.json} describes): {@code BertNormalizer} (clean text, CJK characters split out, accents
 * stripped and lower-cased when uncased), {@code BertPreTokenizer} (whitespace and punctuation
 * split), greedy longest-match-first {@code WordPiece} with {@code ##} continuation and the {@code
 * [CLS] A [SEP] B [SEP]} template. Special tokens written literally in the text ({@code [SEP]},
 * {@code [MASK]} ...) are kept whole, as the fast tokenizer does.
 *
 * <p>Where the fast tokenizer and BERT's original {@code tokenization.py} disagree, this follows
 * the fast one; {@code docs/tokenizer.md} lists the differences. Immutable, hence thread-safe.
 */
public final class BertTokenizer implements Serializable {
  private static final long serialVersionUID = 1L;

  public static final String PAD = "[PAD]";
  public static final String UNK = "[UNK]";
  public static final String CLS = "[CLS]";
  public static final String SEP = "[SEP]";
  public static final String MASK = "[MASK]";

  /** WordPiece gives up on longer words (in code points) and emits one [UNK]. */
  public static final int MAX_INPUT_CHARS_PER_WORD = 100;

  private static final String CONTINUATION = "##";
  private static final List<String> SPECIAL_TOKENS = List.of(PAD, UNK, CLS, SEP, MASK);

  private final String[] idToToken;
  private final boolean doLowerCase;
  // Word-initial pieces and "##" pieces (stored without "##") apart: no string concatenation per
  // probe.
  private final HashMap<String, Integer> initial;
  private final HashMap<String, Integer> continuation;
  // Longest key of each map in UTF-16 units: no probe of substrings that cannot be in the
  // vocabulary.
  private final int maxInitialLength;
  private final int maxContinuationLength;
  private final String[] specialInText;
  private final int[] specialInTextIds;
  private final int padId;
  private final int unkId;
  private final int clsId;
  private final int sepId;

  /**
   * @param vocab the vocabulary, index = token id (vocab.txt line order)
   * @param doLowerCase true for uncased models: lower-case and strip accents
   * @throws IllegalArgumentException on duplicates or missing [PAD]/[UNK]/[CLS]/[SEP]
   */
  public BertTokenizer(List<String> vocab, boolean doLowerCase) {
    this.idToToken = vocab.toArray(new String[0]);
    this.doLowerCase = doLowerCase;
    this.initial = new HashMap<>(vocab.size() * 2);
    this.continuation = new HashMap<>(vocab.size());
    int maxInit = 0;
    int maxCont = 0;
    for (int id = 0; id < idToToken.length; id++) {
      String t = idToToken[id];
      if (t == null || t.isEmpty()) {
        throw new IllegalArgumentException("vocabulary entry " + id + " is empty");
      }
      if (initial.putIfAbsent(t, id) != null) {
        throw new IllegalArgumentException(
            "vocabulary token '" + t + "' appears twice, at ids " + initial.get(t) + " and " + id);
      }
      maxInit = Math.max(maxInit, t.length());
      if (t.startsWith(CONTINUATION) && t.length() > CONTINUATION.length()) {
        String piece = t.substring(CONTINUATION.length());
        continuation.put(piece, id);
        maxCont = Math.max(maxCont, piece.length());
      }
    }
    this.maxInitialLength = maxInit;
    this.maxContinuationLength = maxCont;
    this.padId = requiredId(PAD);
    this.unkId = requiredId(UNK);
    this.clsId = requiredId(CLS);
    this.sepId = requiredId(SEP);
    List<String> specials = new ArrayList<>();
    for (String s : SPECIAL_TOKENS) {
      if (initial.containsKey(s)) {
        specials.add(s);
      }
    }
    this.specialInText = specials.toArray(new String[0]);
    this.specialInTextIds = specials.stream().mapToInt(initial::get).toArray();
  }

  /** An uncased tokenizer (lower-casing and accent stripping), as bert-base-uncased. */
  public BertTokenizer(List<String> vocab) {
    this(vocab, true);
  }

  private int requiredId(String token) {
    Integer id = initial.get(token);
    if (id == null) {
      throw new IllegalArgumentException("vocabulary has no " + token + " token");
    }
    return id;
  }

  // ---------------------------------------------------------------------------------------------
  // Factories

  /** Reads {@code vocab.txt} (UTF-8, one token per line, line order = id). */
  public static BertTokenizer fromVocabFile(Path vocabTxt, boolean doLowerCase) {
    try (InputStream in = Files.newInputStream(vocabTxt)) {
      return fromVocabStream(in, vocabTxt.toString(), doLowerCase);
    } catch (IOException e) {
      throw new CheckpointException(vocabTxt + ": cannot read vocabulary: " + e.getMessage(), e);
    }
  }

  /**
   * Reads a {@code vocab.txt} stream (UTF-8, one token per line, line order = id).
   *
   * @param source a name for error messages (the file path or URI)
   * @throws CheckpointException naming the source and line: invalid UTF-8, empty or duplicate line,
   *     byte order mark, missing special token
   */
  public static BertTokenizer fromVocabStream(InputStream in, String source, boolean doLowerCase) {
    String text;
    try {
      byte[] bytes = in.readAllBytes();
      text =
          StandardCharsets.UTF_8
              .newDecoder()
              .onMalformedInput(CodingErrorAction.REPORT)
              .onUnmappableCharacter(CodingErrorAction.REPORT)
              .decode(ByteBuffer.wrap(bytes))
              .toString();
    } catch (CharacterCodingException e) {
      throw new CheckpointException(source + ": vocabulary is not valid UTF-8", e);
    } catch (IOException e) {
      throw new CheckpointException(source + ": cannot read vocabulary: " + e.getMessage(), e);
    }
    if (text.startsWith("\uFEFF")) {
      throw new CheckpointException(source + ": line 1: vocabulary starts with a byte order mark");
    }
    List<String> vocab = new ArrayList<>(32_000);
    Map<String, Integer> seen = new HashMap<>(64_000);
    int start = 0;
    int line = 0;
    while (start < text.length()) {
      int nl = text.indexOf('\n', start);
      int end = nl < 0 ? text.length() : nl;
      line++;
      // Files written on Windows: Python's universal newlines drop the \r too.
      int tokenEnd = end > start && text.charAt(end - 1) == '\r' ? end - 1 : end;
      String token = text.substring(start, tokenEnd);
      if (token.isEmpty()) {
        throw new CheckpointException(source + ": line " + line + ": empty vocabulary entry");
      }
      Integer previous = seen.putIfAbsent(token, line);
      if (previous != null) {
        throw new CheckpointException(
            source + ": line " + line + ": token '" + token + "' already on line " + previous);
      }
      vocab.add(token);
      start = end + 1;
    }
    if (vocab.isEmpty()) {
      throw new CheckpointException(source + ": vocabulary is empty");
    }
    try {
      return new BertTokenizer(vocab, doLowerCase);
    } catch (IllegalArgumentException e) {
      throw new CheckpointException(source + ": " + e.getMessage(), e);
    }
  }

  /**
   * Reads a Hugging Face {@code tokenizer.json} of a BERT WordPiece tokenizer: the vocabulary from
   * {@code model.vocab}, lower-casing from {@code normalizer.lowercase}. Anything this class would
   * not reproduce exactly (another model type, prefix, normalizer setting) is rejected with the key
   * named.
   */
  public static BertTokenizer fromTokenizerJson(Path tokenizerJson) {
    try {
      return fromTokenizerJson(Files.readString(tokenizerJson), tokenizerJson.toString());
    } catch (IOException e) {
      throw new CheckpointException(tokenizerJson + ": cannot read: " + e.getMessage(), e);
    }
  }

  /** See {@link #fromTokenizerJson(Path)}; {@code source} names the file in error messages. */
  public static BertTokenizer fromTokenizerJson(String json, String source) {
    JsonNode root;
    try {
      root = new ObjectMapper().readTree(json);
    } catch (IOException e) {
      throw new CheckpointException(source + ": not valid JSON: " + e.getMessage(), e);
    }
    if (root == null || !root.isObject()) {
      throw new CheckpointException(source + ": expected a JSON object");
    }
    JsonNode model = root.path("model");
    requireJson(
        model.path("type").asText("").equals("WordPiece"),
        source,
        "model.type",
        "expected \"WordPiece\", got " + model.path("type"));
    requireJson(
        model.path("unk_token").asText(UNK).equals(UNK),
        source,
        "model.unk_token",
        "expected \"" + UNK + "\", got " + model.path("unk_token"));
    requireJson(
        model.path("continuing_subword_prefix").asText(CONTINUATION).equals(CONTINUATION),
        source,
        "model.continuing_subword_prefix",
        "expected \"##\", got " + model.path("continuing_subword_prefix"));
    requireJson(
        model.path("max_input_chars_per_word").asInt(MAX_INPUT_CHARS_PER_WORD)
            == MAX_INPUT_CHARS_PER_WORD,
        source,
        "model.max_input_chars_per_word",
        "expected " + MAX_INPUT_CHARS_PER_WORD + ", got " + model.path("max_input_chars_per_word"));

    JsonNode normalizer = root.path("normalizer");
    requireJson(
        normalizer.path("type").asText("").equals("BertNormalizer"),
        source,
        "normalizer.type",
        "expected \"BertNormalizer\", got " + normalizer.path("type"));
    requireJson(
        normalizer.path("clean_text").asBoolean(true),
        source,
        "normalizer.clean_text",
        "only true is supported");
    requireJson(
        normalizer.path("handle_chinese_chars").asBoolean(true),
        source,
        "normalizer.handle_chinese_chars",
        "only true is supported");
    boolean lowercase = normalizer.path("lowercase").asBoolean(true);
    JsonNode strip = normalizer.path("strip_accents");
    requireJson(
        strip.isMissingNode() || strip.isNull() || strip.asBoolean() == lowercase,
        source,
        "normalizer.strip_accents",
        "must be null or equal to lowercase (" + lowercase + ")");
    JsonNode pre = root.path("pre_tokenizer");
    requireJson(
        pre.path("type").asText("").equals("BertPreTokenizer"),
        source,
        "pre_tokenizer.type",
        "expected \"BertPreTokenizer\", got " + pre.path("type"));

    JsonNode vocabNode = model.path("vocab");
    requireJson(
        vocabNode.isObject() && !vocabNode.isEmpty(),
        source,
        "model.vocab",
        "expected a non-empty object token -> id");
    String[] byId = new String[vocabNode.size()];
    Iterator<Map.Entry<String, JsonNode>> it = vocabNode.fields();
    while (it.hasNext()) {
      Map.Entry<String, JsonNode> e = it.next();
      JsonNode idNode = e.getValue();
      int id = idNode.canConvertToInt() && idNode.isIntegralNumber() ? idNode.intValue() : -1;
      requireJson(
          id >= 0 && id < byId.length && byId[id] == null,
          source,
          "model.vocab",
          "token '"
              + e.getKey()
              + "' has id "
              + idNode
              + "; ids must be 0.."
              + (byId.length - 1)
              + " without gaps or repeats");
      byId[id] = e.getKey();
    }
    try {
      return new BertTokenizer(Arrays.asList(byId), lowercase);
    } catch (IllegalArgumentException e) {
      throw new CheckpointException(source + ": model.vocab: " + e.getMessage(), e);
    }
  }

  private static void requireJson(boolean ok, String source, String key, String message) {
    if (!ok) {
      throw new CheckpointException(source + ": key '" + key + "': " + message);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Accessors

  public int vocabSize() {
    return idToToken.length;
  }

  public boolean doLowerCase() {
    return doLowerCase;
  }

  public int padId() {
    return padId;
  }

  public int unkId() {
    return unkId;
  }

  public int clsId() {
    return clsId;
  }

  public int sepId() {
    return sepId;
  }

  /** The id of a vocabulary token, or -1. */
  public int tokenId(String token) {
    Integer id = initial.get(token);
    return id == null ? -1 : id;
  }

  public String token(int id) {
    return idToToken[id];
  }

  /** The vocabulary in id order (for writing vocab.txt next to an exported model). */
  public List<String> vocabulary() {
    return List.of(idToToken);
  }

  // ---------------------------------------------------------------------------------------------
  // Tokenization

  /** WordPiece tokens of {@code text}, no special tokens added. */
  public List<String> tokenize(String text) {
    int[] ids = tokenIds(text);
    List<String> out = new ArrayList<>(ids.length);
    for (int id : ids) {
      out.add(idToToken[id]);
    }
    return out;
  }

  /** WordPiece ids of {@code text}, no special tokens added. */
  public int[] tokenIds(String text) {
    IntList out = new IntList(text.length() / 3 + 4);
    appendIds(text, out);
    return out.toArray();
  }

  /** {@code [CLS] text [SEP]}, not truncated. */
  public Encoding encode(String text) {
    return encode(text, null, Integer.MAX_VALUE);
  }

  /** {@code [CLS] text [SEP]}, truncated to at most {@code maxSeqLength} tokens in all. */
  public Encoding encode(String text, int maxSeqLength) {
    return encode(text, null, maxSeqLength);
  }

  /**
   * {@code [CLS] a [SEP]} when {@code textB} is null, else {@code [CLS] a [SEP] b [SEP]}, with
   * token types 0 for {@code [CLS] a [SEP]} and 1 for {@code b [SEP]}, longest-first truncated so
   * that the whole encoding has at most {@code maxSeqLength} tokens. Not padded: see {@link
   * #encodePadded}.
   */
  public Encoding encode(String textA, String textB, int maxSeqLength) {
    int[] a = tokenIds(textA);
    int[] b = textB == null ? null : tokenIds(textB);
    return encodeIds(a, b, maxSeqLength);
  }

  /** {@link #encode(String, String, int)} padded with [PAD] to exactly {@code maxSeqLength}. */
  public Encoding encodePadded(String textA, String textB, int maxSeqLength) {
    return encode(textA, textB, maxSeqLength).padded(maxSeqLength, padId);
  }

  /**
   * Adds the special tokens to already tokenized ids and truncates exactly as Hugging Face's fast
   * tokenizer (strategy {@code longest_first}): a single sequence keeps its first {@code
   * maxSeqLength - 2} ids; of a pair (budget {@code maxSeqLength - 3}) only the longer one is cut
   * to {@code budget - shorter} if that is at least the shorter's length, otherwise both are cut to
   * half the budget and an odd remainder goes to the longer one (to b on a tie).
   *
   * @param b the second sequence, or null for a single one
   */
  public Encoding encodeIds(int[] a, int[] b, int maxSeqLength) {
    int special = b == null ? 2 : 3;
    if (maxSeqLength < special) {
      throw new IllegalArgumentException(
          "maxSeqLength "
              + maxSeqLength
              + " leaves no room for the "
              + special
              + " special tokens of a "
              + (b == null ? "single sequence" : "pair"));
    }
    int budget = maxSeqLength == Integer.MAX_VALUE ? Integer.MAX_VALUE : maxSeqLength - special;
    int n1 = a.length;
    int n2 = b == null ? 0 : b.length;
    if ((long) n1 + n2 > budget) {
      if (b == null) {
        n1 = budget;
      } else {
        int[] kept = truncatePair(n1, n2, budget);
        n1 = kept[0];
        n2 = kept[1];
      }
    }
    int len = n1 + n2 + special;
    int[] ids = new int[len];
    int[] types = new int[len];
    int[] mask = new int[len];
    Arrays.fill(mask, 1);
    ids[0] = clsId;
    System.arraycopy(a, 0, ids, 1, n1);
    ids[n1 + 1] = sepId;
    if (b != null) {
      System.arraycopy(b, 0, ids, n1 + 2, n2);
      ids[len - 1] = sepId;
      Arrays.fill(types, n1 + 2, len, 1);
    }
    return new Encoding(ids, types, mask);
  }

  /**
   * Kept lengths of a pair of lengths {@code n1}, {@code n2} for a token budget, as {@code
   * truncate_encodings} of Hugging Face {@code tokenizers}. BERT's original {@code
   * truncate_seq_pair} pops one token at a time from the longer (b on ties) and differs only in
   * where an odd budget's extra token goes when both sequences are long: it always gives it to a.
   * The fast tokenizer's rule is kept because it is what transformers (and the CAP reference) feed
   * the model.
   */
  static int[] truncatePair(int n1, int n2, int budget) {
    if ((long) n1 + n2 <= budget) {
      return new int[] {n1, n2};
    }
    boolean swap = n1 > n2;
    int shorter = swap ? n2 : n1;
    int longer;
    longer = shorter > budget ? shorter : Math.max(shorter, budget - shorter);
    if (shorter + longer > budget) {
      shorter = budget / 2;
      longer = shorter + budget % 2;
    }
    int keep1 = swap ? longer : shorter;
    int keep2 = swap ? shorter : longer;
    return new int[] {Math.min(keep1, n1), Math.min(keep2, n2)};
  }

  /** Splits out special tokens written in the raw text (matched before any normalization). */
  private void appendIds(String text, IntList out) {
    int segment = 0;
    if (specialInText.length > 0) {
      int at = text.indexOf('[');
      while (at >= 0) {
        int best = -1;
        for (int s = 0; s < specialInText.length; s++) {
          if (text.startsWith(specialInText[s], at)
              && (best < 0 || specialInText[s].length() > specialInText[best].length())) {
            best = s;
          }
        }
        if (best >= 0) {
          appendSegment(text, segment, at, out);
          out.add(specialInTextIds[best]);
          segment = at + specialInText[best].length();
          at = text.indexOf('[', segment);
        } else {
          at = text.indexOf('[', at + 1);
        }
      }
    }
    appendSegment(text, segment, text.length(), out);
  }

  /** Normalizes, splits into words and WordPiece-tokenizes {@code text[from, to)}. */
  private void appendSegment(String text, int from, int to, IntList out) {
    if (from >= to) {
      return;
    }
    String s = normalize(text, from, to);
    int wordStart = -1;
    int i = 0;
    while (i < s.length()) {
      int cp = s.codePointAt(i);
      int next = i + Character.charCount(cp);
      if (cp == ' ' || isWhitespace(cp)) {
        if (wordStart >= 0) {
          wordPiece(s, wordStart, i, out);
          wordStart = -1;
        }
      } else if (isPunctuation(cp)) {
        if (wordStart >= 0) {
          wordPiece(s, wordStart, i, out);
          wordStart = -1;
        }
        wordPiece(s, i, next, out);
      } else if (wordStart < 0) {
        wordStart = i;
      }
      i = next;
    }
    if (wordStart >= 0) {
      wordPiece(s, wordStart, s.length(), out);
    }
  }

  /**
   * BertNormalizer in the fast tokenizer's order: clean text, space out CJK characters, then (if
   * uncased) NFD + drop non-spacing marks, then lower-case character by character. Per character,
   * not per word, so a word-final capital sigma becomes σ (Python's str.lower() would give ς).
   */
  private String normalize(String text, int from, int to) {
    StringBuilder sb = new StringBuilder(to - from + 8);
    boolean ascii = true;
    int i = from;
    while (i < to) {
      int cp = text.codePointAt(i);
      i += Character.charCount(cp);
      if (cp < 0x80) {
        if (cp == '\t' || cp == '\n' || cp == '\r' || cp == ' ') {
          sb.append(' ');
        } else if (cp >= 0x20 && cp != 0x7F) {
          sb.append((char) (doLowerCase && cp >= 'A' && cp <= 'Z' ? cp + ('a' - 'A') : cp));
        }
        // other ASCII controls (NUL included) are dropped
        continue;
      }
      if (cp == 0xFFFD || isControl(cp)) {
        continue;
      }
      if (isWhitespace(cp)) {
        sb.append(' ');
      } else if (isChineseChar(cp)) {
        sb.append(' ').appendCodePoint(cp).append(' ');
        ascii = false;
      } else {
        sb.appendCodePoint(cp);
        ascii = false;
      }
    }
    if (ascii || !doLowerCase) {
      return sb.toString();
    }
    String nfd = Normalizer.normalize(sb, Normalizer.Form.NFD);
    StringBuilder out = new StringBuilder(nfd.length());
    int j = 0;
    while (j < nfd.length()) {
      int cp = nfd.codePointAt(j);
      j += Character.charCount(cp);
      if (Character.getType(cp) != Character.NON_SPACING_MARK) {
        out.appendCodePoint(Character.toLowerCase(cp));
      }
    }
    return out.toString();
  }

  /** Greedy longest-match-first WordPiece of the word {@code s[from, to)}. */
  private void wordPiece(String s, int from, int to, IntList out) {
    if (to - from > MAX_INPUT_CHARS_PER_WORD
        && s.codePointCount(from, to) > MAX_INPUT_CHARS_PER_WORD) {
      out.add(unkId);
      return;
    }
    int mark = out.size();
    int start = from;
    while (start < to) {
      boolean first = start == from;
      HashMap<String, Integer> map = first ? initial : continuation;
      int end = Math.min(to, start + (first ? maxInitialLength : maxContinuationLength));
      Integer id = null;
      while (end > start) {
        id = map.get(s.substring(start, end));
        if (id != null) {
          break;
        }
        end = s.offsetByCodePoints(end, -1);
      }
      if (id == null) {
        out.truncate(mark);
        out.add(unkId);
        return;
      }
      out.add(id);
      start = end;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Character classes, as the fast tokenizer defines them

  /** Unicode White_Space (what Rust's char::is_whitespace tests), not Java's isWhitespace. */
  static boolean isWhitespace(int cp) {
    return switch (cp) {
      case '\t',
          '\n',
          0x0B,
          0x0C,
          '\r',
          ' ',
          0x85,
          0xA0,
          0x1680,
          0x2028,
          0x2029,
          0x202F,
          0x205F,
          0x3000 ->
          true;
      default -> cp >= 0x2000 && cp <= 0x200A;
    };
  }

  /** Categories Cc, Cf, Co (and lone surrogates), except tab, newline and carriage return. */
  static boolean isControl(int cp) {
    if (cp == '\t' || cp == '\n' || cp == '\r') {
      return false;
    }
    int type = Character.getType(cp);
    return type == Character.CONTROL
        || type == Character.FORMAT
        || type == Character.PRIVATE_USE
        || type == Character.SURROGATE;
  }

  /** ASCII punctuation (including $, +, <, =, >, ^, `, |, ~ which Unicode calls symbols) or P*. */
  static boolean isPunctuation(int cp) {
    if ((cp >= 33 && cp <= 47)
        || (cp >= 58 && cp <= 64)
        || (cp >= 91 && cp <= 96)
        || (cp >= 123 && cp <= 126)) {
      return true;
    }
    if (cp < 0x80) {
      return false;
    }
    return switch (Character.getType(cp)) {
      case Character.CONNECTOR_PUNCTUATION,
          Character.DASH_PUNCTUATION,
          Character.START_PUNCTUATION,
          Character.END_PUNCTUATION,
          Character.INITIAL_QUOTE_PUNCTUATION,
          Character.FINAL_QUOTE_PUNCTUATION,
          Character.OTHER_PUNCTUATION ->
          true;
      default -> false;
    };
  }

  /**
   * The CJK blocks BERT splits into single characters. The ranges are those of the fast tokenizer,
   * whose fifth range starts at U+2B920 where BERT's tokenization.py has U+2B820.
   */
  static boolean isChineseChar(int cp) {
    return (cp >= 0x4E00 && cp <= 0x9FFF)
        || (cp >= 0x3400 && cp <= 0x4DBF)
        || (cp >= 0x20000 && cp <= 0x2A6DF)
        || (cp >= 0x2A700 && cp <= 0x2B73F)
        || (cp >= 0x2B740 && cp <= 0x2B81F)
        || (cp >= 0x2B920 && cp <= 0x2CEAF)
        || (cp >= 0xF900 && cp <= 0xFAFF)
        || (cp >= 0x2F800 && cp <= 0x2FA1F);
  }

  /** A growable int array: token ids without boxing. */
  private static final class IntList {
    private int[] data;
    private int size;

    IntList(int capacity) {
      data = new int[Math.max(4, capacity)];
    }

    void add(int v) {
      if (size == data.length) {
        data = Arrays.copyOf(data, size * 2);
      }
      data[size++] = v;
    }

    int size() {
      return size;
    }

    void truncate(int n) {
      size = n;
    }

    int[] toArray() {
      return Arrays.copyOf(data, size);
    }
  }
}
