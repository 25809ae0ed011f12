using System.Net;
using System.Net.Sockets;

namespace VmTools.TestSupport;

/// <summary>
/// A loopback TCP port in front of another: it resets its first <c>resets</c> connections (accepted, the
/// client's first line read, then closed with SO_LINGER 0, which sends RST), and relays every later one to
/// the target, both ways. The reset is what a client sees when qemu's user network forwards a connection the
/// guest drops: ssh's "kex_exchange_identification: read: Connection reset by peer".
/// </summary>
public sealed class ResettingTcpProxy : IDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly int _targetPort;
    private readonly CancellationTokenSource _stop = new();
    private int _resetsLeft;
    private int _accepted;

    public ResettingTcpProxy(int targetPort, int resets)
    {
        _targetPort = targetPort;
        _resetsLeft = resets;
        _listener.Start();
        _ = AcceptLoopAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>Connections accepted so far, the reset ones included.</summary>
    public int Accepted => Volatile.Read(ref _accepted);

    private async Task AcceptLoopAsync()
    {
        try
        {
            while (true)
            {
                var client = await _listener.AcceptSocketAsync(_stop.Token);
                Interlocked.Increment(ref _accepted);
                _ = Interlocked.Decrement(ref _resetsLeft) >= 0 ? ResetAfterFirstLineAsync(client) : RelayAsync(client);
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (SocketException)
        {
        }
    }

    /// <summary>
    /// Reads the client's first line (ssh's identification string) and resets: qemu's user network, too, takes
    /// the client's bytes before the guest's reset reaches it. A reset before ssh's write would make ssh fail
    /// without a word at LogLevel=ERROR; this one makes it say "kex_exchange_identification: read: ...".
    /// </summary>
    private async Task ResetAfterFirstLineAsync(Socket client)
    {
        using (client)
        {
            try
            {
                using var patience = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
                patience.CancelAfter(TimeSpan.FromSeconds(30));
                var one = new byte[1];
                while (await client.ReceiveAsync(one, SocketFlags.None, patience.Token) == 1 && one[0] != (byte)'\n')
                {
                }
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException)
            {
            }

            client.LingerState = new LingerOption(true, 0); // close() now sends RST instead of FIN
        }
    }

    private async Task RelayAsync(Socket client)
    {
        using (client)
        using (var target = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            try
            {
                await target.ConnectAsync(IPAddress.Loopback, _targetPort, _stop.Token);
                await Task.WhenAll(Pump(client, target), Pump(target, client));
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException)
            {
            }
        }
    }

    /// <summary>Copies one direction; its end of stream is passed on as a half-close, as a TCP hop does.</summary>
    private async Task Pump(Socket from, Socket to)
    {
        try
        {
            await using (var source = new NetworkStream(from, ownsSocket: false))
            await using (var sink = new NetworkStream(to, ownsSocket: false))
            {
                await source.CopyToAsync(sink, _stop.Token);
            }

            to.Shutdown(SocketShutdown.Send);
        }
        catch (Exception e) when (e is SocketException or IOException or OperationCanceledException)
        {
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        _stop.Dispose();
    }
}
