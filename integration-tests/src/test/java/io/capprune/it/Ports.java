package io.capprune.it;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.time.Duration;

/**
 * Loopback ports: chosen by the kernel, never hard-coded, so parallel builds on one machine do not
 * collide.
 */
public final class Ports {

  private Ports() {}

  /**
   * A port that was free a moment ago on 127.0.0.1 (the child that binds it may still lose a race;
   * rare).
   */
  public static int free() {
    try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      socket.setReuseAddress(true);
      return socket.getLocalPort();
    } catch (IOException e) {
      throw new UncheckedIOException("no free port on 127.0.0.1", e);
    }
  }

  public static boolean isListening(int port) {
    try (Socket socket = new Socket()) {
      socket.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 200);
      return true;
    } catch (IOException e) {
      return false;
    }
  }

  /**
   * Waits for {@code port} to accept connections, failing early with the log tail if the process
   * died.
   */
  public static void awaitListening(int port, ChildProcess owner, Duration timeout)
      throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (!isListening(port)) {
      if (!owner.isAlive()) {
        throw new IllegalStateException(
            owner
                + " exited before listening on 127.0.0.1:"
                + port
                + "; log tail:\n"
                + owner.tail(30));
      }
      if (System.nanoTime() > deadline) {
        throw new IllegalStateException(
            owner
                + " not listening on 127.0.0.1:"
                + port
                + " after "
                + timeout.toSeconds()
                + " s; log tail:\n"
                + owner.tail(30));
      }
      Thread.sleep(100);
    }
  }
}
