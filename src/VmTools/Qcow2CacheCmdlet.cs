using System.Management.Automation;
using VmTools.Completers;
using VmTools.Core.Images;
using VmTools.Core.Registry;

namespace VmTools;

/// <summary>Parameters and defaults every Qcow2Cache cmdlet shares: repository, credential, trust.</summary>
public abstract class Qcow2CacheCmdlet : VmToolsCmdlet
{
    /// <summary>Repository without tag, e.g. quay.io/org/flightctl-device-qcow2. Default: quay.io/$REGISTRY_OWNER_TESTS/flightctl-device-qcow2.</summary>
    [Parameter]
    [ArgumentCompleter(typeof(CachedRepositoryCompleter))]
    [ValidateNotNullOrEmpty]
    public string? Repository { get; set; }

    [Parameter]
    [Credential]
    public PSCredential? Credential { get; set; }

    /// <summary>Allow plain HTTP and skip TLS verification for this registry (loopback registries may use HTTP without it).</summary>
    [Parameter]
    public SwitchParameter Insecure { get; set; }

    /// <summary>Lets the credential cross plain HTTP to a non-loopback registry named with -Insecure (off: RegistryCredentialsOverHttp).</summary>
    [Parameter]
    public SwitchParameter AllowCredentialsOverHttp { get; set; }

    /// <summary>Token service hosts outside the registry's own domain that may receive the credential (added to VMTOOLS_TRUSTED_TOKEN_REALMS).</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string[]? TrustedTokenRealm { get; set; }

    protected CacheSettings Settings { get; private set; } = null!;

    protected override void BeginProcessing()
    {
        base.BeginProcessing();
        Settings = CacheSettings.FromEnvironment();
    }

    /// <summary>The repository as a reference without tag or digest; a tag given inline is refused (use -Tag).</summary>
    protected ImageReference ParseRepository() => ParseRepository(allowDigest: false);

    /// <summary>As <see cref="ParseRepository()"/>; with <paramref name="allowDigest"/>, <c>repo@sha256:…</c> is kept (a pin) and only a tag is refused.</summary>
    protected ImageReference ParseRepository(bool allowDigest)
    {
        var text = Repository ?? Settings.DefaultRepository;
        var reference = Guard(() => ImageReference.Parse(text));

        if (reference.Tag is not null || (reference.Digest is not null && !allowDigest))
        {
            ThrowArgumentError("ImageReferenceHasTag", $"-Repository takes a repository without tag or digest ('{reference.Name}'); pass the tag with -Tag.", text);
        }

        return reference;
    }

    protected RegistryClientOptions ClientOptions(Action<string> verbose) => new()
    {
        Credential = Credential is null ? null : new RegistryCredential(Credential.UserName, Credential.GetNetworkCredential().Password) { Source = "-Credential" },
        Insecure = Insecure,
        AllowCredentialsOverHttp = AllowCredentialsOverHttp,
        TrustedTokenRealms = RegistryClientOptions.DefaultTrustedTokenRealms().Concat(TrustedTokenRealm ?? Array.Empty<string>()).ToList(),
        Verbose = verbose,
    };

    protected static string ValidTag(string tag) => ImageReference.ValidateTag(tag);
}
