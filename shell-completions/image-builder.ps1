
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'image-builder' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'image-builder'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'image-builder' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('plan', 'plan', [CompletionResultType]::ParameterValue, 'Show, per component, the stack, the Dockerfile, the input digest and the tag')
            [CompletionResult]::new('hash', 'hash', [CompletionResultType]::ParameterValue, 'Print the full input digest of a component directory')
            [CompletionResult]::new('build', 'build', [CompletionResultType]::ParameterValue, 'Build images (skipped when the content tag exists), check, load or push them')
            [CompletionResult]::new('frontend', 'frontend', [CompletionResultType]::ParameterValue, 'Run as a BuildKit gateway frontend (BuildKit starts this from the frontend image)')
            [CompletionResult]::new('frontend-image', 'frontend-image', [CompletionResultType]::ParameterValue, 'Build the frontend image (this executable and its libraries, user 1001) into the engine')
            [CompletionResult]::new('completion', 'completion', [CompletionResultType]::ParameterValue, 'Print a shell completion script (bash, zsh, fish or powershell)')
            [CompletionResult]::new('load', 'load', [CompletionResultType]::ParameterValue, 'Load existing images into a local cluster')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'image-builder;plan' {
            [CompletionResult]::new('--base-image', '--base-image', [CompletionResultType]::ParameterName, 'Override a stage''s base image: builder=REF or runtime=REF (repeatable)')
            [CompletionResult]::new('--stack', '--stack', [CompletionResultType]::ParameterName, 'Skip detection and use this stack')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'Port the app listens on (default: 3000 for Node, 8000 for Python, 8080 otherwise)')
            [CompletionResult]::new('--project', '--project', [CompletionResultType]::ParameterName, 'Project name used in the default image name `<project>-<component>`')
            [CompletionResult]::new('--builder', '--builder', [CompletionResultType]::ParameterName, 'Which builder the Dockerfile is generated for')
            [CompletionResult]::new('--build-arg', '--build-arg', [CompletionResultType]::ParameterName, 'A build argument, declared where package managers run (repeatable; part of the digest, never in the image)')
            [CompletionResult]::new('--ca-cert', '--ca-cert', [CompletionResultType]::ParameterName, 'A PEM bundle of CAs that package downloads trust (a TLS-intercepting proxy''s); mounted as a BuildKit secret, never in the image')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'o')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'output')
            [CompletionResult]::new('--no-cache', '--no-cache', [CompletionResultType]::ParameterName, 'Do not use the per-file hash cache')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'image-builder;hash' {
            [CompletionResult]::new('--base-image', '--base-image', [CompletionResultType]::ParameterName, 'Override a stage''s base image: builder=REF or runtime=REF (repeatable)')
            [CompletionResult]::new('--stack', '--stack', [CompletionResultType]::ParameterName, 'Skip detection and use this stack')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'Port the app listens on (default: 3000 for Node, 8000 for Python, 8080 otherwise)')
            [CompletionResult]::new('--project', '--project', [CompletionResultType]::ParameterName, 'Project name used in the default image name `<project>-<component>`')
            [CompletionResult]::new('--builder', '--builder', [CompletionResultType]::ParameterName, 'Which builder the Dockerfile is generated for')
            [CompletionResult]::new('--build-arg', '--build-arg', [CompletionResultType]::ParameterName, 'A build argument, declared where package managers run (repeatable; part of the digest, never in the image)')
            [CompletionResult]::new('--ca-cert', '--ca-cert', [CompletionResultType]::ParameterName, 'A PEM bundle of CAs that package downloads trust (a TLS-intercepting proxy''s); mounted as a BuildKit secret, never in the image')
            [CompletionResult]::new('--no-cache', '--no-cache', [CompletionResultType]::ParameterName, 'Do not use the per-file hash cache')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'image-builder;build' {
            [CompletionResult]::new('--base-image', '--base-image', [CompletionResultType]::ParameterName, 'Override a stage''s base image: builder=REF or runtime=REF (repeatable)')
            [CompletionResult]::new('--stack', '--stack', [CompletionResultType]::ParameterName, 'Skip detection and use this stack')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'Port the app listens on (default: 3000 for Node, 8000 for Python, 8080 otherwise)')
            [CompletionResult]::new('--project', '--project', [CompletionResultType]::ParameterName, 'Project name used in the default image name `<project>-<component>`')
            [CompletionResult]::new('--builder', '--builder', [CompletionResultType]::ParameterName, 'Which builder the Dockerfile is generated for')
            [CompletionResult]::new('--build-arg', '--build-arg', [CompletionResultType]::ParameterName, 'A build argument, declared where package managers run (repeatable; part of the digest, never in the image)')
            [CompletionResult]::new('--ca-cert', '--ca-cert', [CompletionResultType]::ParameterName, 'A PEM bundle of CAs that package downloads trust (a TLS-intercepting proxy''s); mounted as a BuildKit secret, never in the image')
            [CompletionResult]::new('--load', '--load', [CompletionResultType]::ParameterName, 'Load the images into a local cluster')
            [CompletionResult]::new('--cluster', '--cluster', [CompletionResultType]::ParameterName, 'Minikube profile, kind cluster or k3d cluster name')
            [CompletionResult]::new('--push', '--push', [CompletionResultType]::ParameterName, 'Push to this registry (e.g. registry.example.com/team) for remote clusters')
            [CompletionResult]::new('--max-size', '--max-size', [CompletionResultType]::ParameterName, 'Fail when an image is bigger than this (e.g. 200MB)')
            [CompletionResult]::new('--via', '--via', [CompletionResultType]::ParameterName, 'What BuildKit builds from: the generated Dockerfile, or image-builder''s frontend image reading a generated build file (needs BuildKit)')
            [CompletionResult]::new('--frontend-image', '--frontend-image', [CompletionResultType]::ParameterName, 'Frontend image for `--via frontend` (default: one made from this executable, built into the engine when missing)')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'kubeconfig used to see whether the node already has the image')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'kubeconfig context')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'o')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'output')
            [CompletionResult]::new('--no-cache', '--no-cache', [CompletionResultType]::ParameterName, 'Do not use the per-file hash cache')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Rebuild even when an image with the content tag exists')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'image-builder;frontend' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'image-builder;frontend-image' {
            [CompletionResult]::new('--tag', '--tag', [CompletionResultType]::ParameterName, 'Image reference (default: image-builder/frontend:VERSION-ID, ID naming this executable)')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Rebuild even when the image exists')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'image-builder;completion' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'image-builder;load' {
            [CompletionResult]::new('--to', '--to', [CompletionResultType]::ParameterName, 'to')
            [CompletionResult]::new('--cluster', '--cluster', [CompletionResultType]::ParameterName, 'Minikube profile, kind cluster or k3d cluster name')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'kubeconfig')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'context')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'image-builder;help' {
            [CompletionResult]::new('plan', 'plan', [CompletionResultType]::ParameterValue, 'Show, per component, the stack, the Dockerfile, the input digest and the tag')
            [CompletionResult]::new('hash', 'hash', [CompletionResultType]::ParameterValue, 'Print the full input digest of a component directory')
            [CompletionResult]::new('build', 'build', [CompletionResultType]::ParameterValue, 'Build images (skipped when the content tag exists), check, load or push them')
            [CompletionResult]::new('frontend', 'frontend', [CompletionResultType]::ParameterValue, 'Run as a BuildKit gateway frontend (BuildKit starts this from the frontend image)')
            [CompletionResult]::new('frontend-image', 'frontend-image', [CompletionResultType]::ParameterValue, 'Build the frontend image (this executable and its libraries, user 1001) into the engine')
            [CompletionResult]::new('completion', 'completion', [CompletionResultType]::ParameterValue, 'Print a shell completion script (bash, zsh, fish or powershell)')
            [CompletionResult]::new('load', 'load', [CompletionResultType]::ParameterValue, 'Load existing images into a local cluster')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'image-builder;help;plan' {
            break
        }
        'image-builder;help;hash' {
            break
        }
        'image-builder;help;build' {
            break
        }
        'image-builder;help;frontend' {
            break
        }
        'image-builder;help;frontend-image' {
            break
        }
        'image-builder;help;completion' {
            break
        }
        'image-builder;help;load' {
            break
        }
        'image-builder;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
