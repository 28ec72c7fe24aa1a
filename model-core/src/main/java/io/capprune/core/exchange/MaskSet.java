package io.capprune.core.exchange;

import io.capprune.core.optim.ParallelLoops;
import io.capprune.core.tensor.HostTensor;
import java.io.Serializable;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The masks of the pruned matrices as bits (1/32 of their fp32 size), which entries of each matrix
 * the forward pass uses. Masks change only when the driver recomputes them, so the trainer
 * broadcasts a mask set only when its bits differ from the last one, and each step's {@link
 * PackedWeights} carry only the values of the entries whose bit is set.
 */
public final class MaskSet implements Serializable {
  private static final long serialVersionUID = 1L;
  private static final AtomicLong IDS = new AtomicLong(System.nanoTime());

  private final long id;
  private final LinkedHashMap<String, long[]> bits;
  private final LinkedHashMap<String, Integer> counts;

  private MaskSet(LinkedHashMap<String, long[]> bits, LinkedHashMap<String, Integer> counts) {
    this.id = IDS.incrementAndGet();
    this.bits = bits;
    this.counts = counts;
  }

  /** Bit i of a matrix is set iff its mask entry i is not zero. */
  public static MaskSet of(Map<String, HostTensor> masks) {
    List<String> names = List.copyOf(masks.keySet());
    long[][] b = new long[names.size()][];
    int[] c = new int[names.size()];
    ParallelLoops.forEach(
        names.size(),
        i -> {
          float[] m = masks.get(names.get(i)).data();
          long[] words = new long[(m.length + 63) >>> 6];
          int n = 0;
          // a word at a time, without a branch per entry: masks are dense early and sparse late,
          // and
          // a 50 % mask makes a per-entry branch mispredict every other entry
          for (int word = 0; word < words.length; word++) {
            int base = word << 6;
            int end = Math.min(64, m.length - base);
            long bitsOfWord = 0;
            for (int bit = 0; bit < end; bit++) {
              bitsOfWord |= (m[base + bit] != 0f ? 1L : 0L) << bit;
            }
            words[word] = bitsOfWord;
            n += Long.bitCount(bitsOfWord);
          }
          b[i] = words;
          c[i] = n;
        });
    LinkedHashMap<String, long[]> bits = new LinkedHashMap<>();
    LinkedHashMap<String, Integer> counts = new LinkedHashMap<>();
    for (int i = 0; i < names.size(); i++) {
      bits.put(names.get(i), b[i]);
      counts.put(names.get(i), c[i]);
    }
    return new MaskSet(bits, counts);
  }

  /**
   * A set from bits built elsewhere (on a device, {@link DevicePacking}): bit j of word j/64 of a
   * matrix is its entry j; the counts are the bits set. Takes ownership of the arrays.
   */
  static MaskSet ofBits(LinkedHashMap<String, long[]> bits) {
    LinkedHashMap<String, Integer> counts = new LinkedHashMap<>();
    for (Map.Entry<String, long[]> e : bits.entrySet()) {
      int n = 0;
      for (long w : e.getValue()) {
        n += Long.bitCount(w);
      }
      counts.put(e.getKey(), n);
    }
    return new MaskSet(new LinkedHashMap<>(bits), counts);
  }

  /** No masked matrices: every tensor travels dense. */
  public static MaskSet none() {
    return new MaskSet(new LinkedHashMap<>(), new LinkedHashMap<>());
  }

  /** Identifies this set, so that weights packed against it are never unpacked with another. */
  public long id() {
    return id;
  }

  public boolean masks(String name) {
    return bits.containsKey(name);
  }

  /** The bits of {@code name}'s mask (bit j of word j/64), not a copy: do not modify. */
  long[] bits(String name) {
    return bits.get(name);
  }

  /** Entries of {@code name} the forward pass uses. */
  public int kept(String name) {
    return counts.get(name);
  }

  public java.util.Set<String> names() {
    return Collections.unmodifiableSet(bits.keySet());
  }

  /** Same matrices and the same bits (the ids may differ). */
  public boolean sameBits(MaskSet other) {
    if (other == null || !bits.keySet().equals(other.bits.keySet())) {
      return false;
    }
    for (Map.Entry<String, long[]> e : bits.entrySet()) {
      if (!Arrays.equals(e.getValue(), other.bits.get(e.getKey()))) {
        return false;
      }
    }
    return true;
  }

  /** Bytes of the bits (what a broadcast of this set costs, before serialisation overhead). */
  public long bytes() {
    return bits.values().stream().mapToLong(w -> 8L * w.length).sum();
  }
}
