package io.capprune.spark.worker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/**
 * Spark's GPU address (a physical index) to the CUDA ordinal, with and without
 * CUDA_VISIBLE_DEVICES.
 */
class GpuAddressesTest {

  @Test
  void withoutCudaVisibleDevicesTheAddressIsTheOrdinal() {
    assertEquals(0, GpuAddresses.cudaOrdinal("0", null));
    assertEquals(3, GpuAddresses.cudaOrdinal(" 3 ", null));
  }

  @Test
  void withCudaVisibleDevicesTheOrdinalIsThePositionInTheList() {
    // YARN without isolation, or a container runtime that sets it: physical GPUs 2 and 3 visible.
    assertEquals(0, GpuAddresses.cudaOrdinal("2", "2,3"));
    assertEquals(1, GpuAddresses.cudaOrdinal("3", "2,3"));
    // the list's order, not the numbers' order
    assertEquals(0, GpuAddresses.cudaOrdinal("5", "5,1"));
    assertEquals(1, GpuAddresses.cudaOrdinal("1", "5, 1"));
    assertEquals(2, GpuAddresses.cudaOrdinal("7", "3,4,07"));
    // one visible GPU, as in a container given physical GPU 6
    assertEquals(0, GpuAddresses.cudaOrdinal("6", "6"));
  }

  @Test
  void anAddressTheListDoesNotHoldIsRefused() {
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> GpuAddresses.cudaOrdinal("1", "2,3"));
    assertTrue(
        e.getMessage().contains("Spark assigned GPU 1")
            && e.getMessage().contains("CUDA_VISIBLE_DEVICES=2,3")
            && e.getMessage().contains("does not list it"),
        e.getMessage());
  }

  @Test
  void cudaStopsAtTheFirstInvalidEntryAndSoDoesTheMapping() {
    assertEquals(1, GpuAddresses.cudaOrdinal("0", "2,0,-1,3"));
    assertThrows(IllegalArgumentException.class, () -> GpuAddresses.cudaOrdinal("3", "2,0,-1,3"));
    IllegalArgumentException none =
        assertThrows(IllegalArgumentException.class, () -> GpuAddresses.cudaOrdinal("0", ""));
    assertTrue(none.getMessage().contains("hides every GPU"), none.getMessage());
    assertThrows(IllegalArgumentException.class, () -> GpuAddresses.cudaOrdinal("0", "-1"));
  }

  @Test
  void uuidListsMatchOnlyTheSameIds() {
    String uuids =
        "GPU-8f6c3a1e-0000-1111-2222-333344445555,GPU-aa00bb11-0000-1111-2222-333344445555";
    assertEquals(1, GpuAddresses.cudaOrdinal("GPU-aa00bb11-0000-1111-2222-333344445555", uuids));
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> GpuAddresses.cudaOrdinal("1", uuids));
    assertTrue(e.getMessage().contains("UUIDs or MIG ids"), e.getMessage());
  }

  @Test
  void aNonNumericAddressWithoutTheListIsRefused() {
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class, () -> GpuAddresses.cudaOrdinal("GPU-8f6c", null));
    assertTrue(e.getMessage().contains("not an ordinal"), e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> GpuAddresses.cudaOrdinal(" ", null));
  }
}
