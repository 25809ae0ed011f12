using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace VmTools.Core.Vms;

/// <summary>
/// A minimal QMP client over qemu's Unix socket: greeting, capabilities negotiation, one command.
/// Asynchronous events arriving between are skipped.
/// </summary>
public static class QmpClient
{
    public static async Task<JsonElement> ExecuteAsync(string socketPath, string command, TimeSpan timeout, CancellationToken ct)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(timeout);
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cts.Token).ConfigureAwait(false);
            await using var stream = new NetworkStream(socket, ownsSocket: false);
            using var reader = new StreamReader(stream, Encoding.UTF8);
            await ReadUntilAsync(reader, "QMP", cts.Token).ConfigureAwait(false);
            await SendAsync(stream, "qmp_capabilities", cts.Token).ConfigureAwait(false);
            await ReadUntilAsync(reader, "return", cts.Token).ConfigureAwait(false);
            await SendAsync(stream, command, cts.Token).ConfigureAwait(false);
            return await ReadUntilAsync(reader, "return", cts.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or IOException or JsonException || (e is OperationCanceledException && !ct.IsCancellationRequested))
        {
            throw new VmToolsException("VmQmpFailed", FailureKind.ConnectionFailed, $"QMP '{command}' on {socketPath} failed: {e.Message}", e) { Target = socketPath };
        }
    }

    private static async Task SendAsync(Stream stream, string command, CancellationToken ct)
    {
        var bytes = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new { execute = command }) + "\n");
        await stream.WriteAsync(bytes, ct).ConfigureAwait(false);
    }

    private static async Task<JsonElement> ReadUntilAsync(StreamReader reader, string member, CancellationToken ct)
    {
        while (true)
        {
            var line = await reader.ReadLineAsync(ct).ConfigureAwait(false) ?? throw new IOException("qemu closed the QMP socket");
            using var doc = JsonDocument.Parse(line);
            if (doc.RootElement.TryGetProperty("error", out var error)) throw new IOException("qemu answered: " + error.GetRawText());
            if (doc.RootElement.TryGetProperty(member, out var value)) return value.Clone();
        }
    }
}
