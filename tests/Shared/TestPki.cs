namespace VmTools.TestSupport;

/// <summary>A throw-away CA and a client certificate it signed, made with openssl, for agent payload tests.</summary>
public static class TestPki
{
    public sealed record Pki(string CaCertificate, string ClientCertificate, string ClientKey);

    public static Pki Create(string directory, string clientName = "client-enrollment")
    {
        var openssl = RealComponent.RequireProgram("openssl", "apt-get install openssl");
        Directory.CreateDirectory(directory);
        var ca = Path.Combine(directory, "ca");
        Programs.MustRun(openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=VmTools E2E CA", "-keyout", ca + ".key", "-out", ca + ".pem");
        var client = Path.Combine(directory, clientName);
        Programs.MustRun(openssl, "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=" + clientName, "-keyout", client + ".key", "-out", client + ".csr");
        Programs.MustRun(openssl, "x509", "-req", "-in", client + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key", "-CAcreateserial", "-days", "2", "-out", client + ".crt");
        File.Delete(client + ".csr");
        return new Pki(ca + ".pem", client + ".crt", client + ".key");
    }
}
