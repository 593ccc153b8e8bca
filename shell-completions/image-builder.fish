# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_image_builder_global_optspecs
    string join \n h/help V/version
end

function __fish_image_builder_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_image_builder_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_image_builder_using_subcommand
    set -l cmd (__fish_image_builder_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c image-builder -n "__fish_image_builder_needs_command" -s h -l help -d 'Print help'
complete -c image-builder -n "__fish_image_builder_needs_command" -s V -l version -d 'Print version'
complete -c image-builder -n "__fish_image_builder_needs_command" -f -a "plan" -d 'Show, per component, the stack, the Dockerfile, the input digest and the tag'
complete -c image-builder -n "__fish_image_builder_needs_command" -f -a "hash" -d 'Print the full input digest of a component directory'
complete -c image-builder -n "__fish_image_builder_needs_command" -f -a "build" -d 'Build images (skipped when the content tag exists), check, load or push them'
complete -c image-builder -n "__fish_image_builder_needs_command" -f -a "frontend" -d 'Run as a BuildKit gateway frontend (BuildKit starts this from the frontend image)'
complete -c image-builder -n "__fish_image_builder_needs_command" -f -a "frontend-image" -d 'Build the frontend image (this executable and its libraries, user 1001) into the engine'
complete -c image-builder -n "__fish_image_builder_needs_command" -f -a "completion" -d 'Print a shell completion script (bash, zsh, fish or powershell)'
complete -c image-builder -n "__fish_image_builder_needs_command" -f -a "load" -d 'Load existing images into a local cluster'
complete -c image-builder -n "__fish_image_builder_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c image-builder -n "__fish_image_builder_using_subcommand plan" -l base-image -d 'Override a stage\'s base image: builder=REF or runtime=REF (repeatable)' -r
complete -c image-builder -n "__fish_image_builder_using_subcommand plan" -l stack -d 'Skip detection and use this stack' -r
complete -c image-builder -n "__fish_image_builder_using_subcommand plan" -l port -d 'Port the app listens on (default: 3000 for Node, 8000 for Python, 8080 otherwise)' -r
complete -c image-builder -n "__fish_image_builder_using_subcommand plan" -l project -d 'Project name used in the default image name `<project>-<component>`' -r
complete -c image-builder -n "__fish_image_builder_using_subcommand plan" -l builder -d 'Which builder the Dockerfile is generated for' -r -f -a "auto\t'BuildKit when the engine has it (DOCKER_BUILDKIT=0 forces classic)'
buildkit\t''
classic\t''"
complete -c image-builder -n "__fish_image_builder_using_subcommand plan" -l build-arg -d 'A build argument, declared where package managers run (repeatable; part of the digest, never in the image)' -r
complete -c image-builder -n "__fish_image_builder_using_subcommand plan" -l ca-cert -d 'A PEM bundle of CAs that package downloads trust (a TLS-intercepting proxy\'s); mounted as a BuildKit secret, never in the image' -r -F
complete -c image-builder -n "__fish_image_builder_using_subcommand plan" -s o -l output -r -f -a "text\t''
json\t''"
complete -c image-builder -n "__fish_image_builder_using_subcommand plan" -l no-cache -d 'Do not use the per-file hash cache'
complete -c image-builder -n "__fish_image_builder_using_subcommand plan" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c image-builder -n "__fish_image_builder_using_subcommand hash" -l base-image -d 'Override a stage\'s base image: builder=REF or runtime=REF (repeatable)' -r
complete -c image-builder -n "__fish_image_builder_using_subcommand hash" -l stack -d 'Skip detection and use this stack' -r
complete -c image-builder -n "__fish_image_builder_using_subcommand hash" -l port -d 'Port the app listens on (default: 3000 for Node, 8000 for Python, 8080 otherwise)' -r
complete -c image-builder -n "__fish_image_builder_using_subcommand hash" -l project -d 'Project name used in the default image name `<project>-<component>`' -r
complete -c image-builder -n "__fish_image_builder_using_subcommand hash" -l builder -d 'Which builder the Dockerfile is generated for' -r -f -a "auto\t'BuildKit when the engine has it (DOCKER_BUILDKIT=0 forces classic)'
buildkit\t''
classic\t''"
complete -c image-builder -n "__fish_image_builder_using_subcommand hash" -l build-arg -d 'A build argument, declared where package managers run (repeatable; part of the digest, never in the image)' -r
complete -c image-builder -n "__fish_image_builder_using_subcommand hash" -l ca-cert -d 'A PEM bundle of CAs that package downloads trust (a TLS-intercepting proxy\'s); mounted as a BuildKit secret, never in the image' -r -F
complete -c image-builder -n "__fish_image_builder_using_subcommand hash" -l no-cache -d 'Do not use the per-file hash cache'
complete -c image-builder -n "__fish_image_builder_using_subcommand hash" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c image-builder -n "__fish_image_builder_using_subcommand build" -l base-image -d 'Override a stage\'s base image: builder=REF or runtime=REF (repeatable)' -r
complete -c image-builder -n "__fish_image_builder_using_subcommand build" -l stack -d 'Skip detection and use this stack' -r
complete -c image-builder -n "__fish_image_builder_using_subcommand build" -l port -d 'Port the app listens on (default: 3000 for Node, 8000 for Python, 8080 otherwise)' -r
complete -c image-builder -n "__fish_image_builder_using_subcommand build" -l project -d 'Project name used in the default image name `<project>-<component>`' -r
complete -c image-builder -n "__fish_image_builder_using_subcommand build" -l builder -d 'Which builder the Dockerfile is generated for' -r -f -a "auto\t'BuildKit when the engine has it (DOCKER_BUILDKIT=0 forces classic)'
buildkit\t''
classic\t''"
complete -c image-builder -n "__fish_image_builder_using_subcommand build" -l build-arg -d 'A build argument, declared where package managers run (repeatable; part of the digest, never in the image)' -r
complete -c image-builder -n "__fish_image_builder_using_subcommand build" -l ca-cert -d 'A PEM bundle of CAs that package downloads trust (a TLS-intercepting proxy\'s); mounted as a BuildKit secret, never in the image' -r -F
complete -c image-builder -n "__fish_image_builder_using_subcommand build" -l load -d 'Load the images into a local cluster' -r -f -a "minikube\t''
kind\t''
k3d\t''
none\t''"
complete -c image-builder -n "__fish_image_builder_using_subcommand build" -l cluster -d 'Minikube profile, kind cluster or k3d cluster name' -r
complete -c image-builder -n "__fish_image_builder_using_subcommand build" -l push -d 'Push to this registry (e.g. registry.example.com/team) for remote clusters' -r
complete -c image-builder -n "__fish_image_builder_using_subcommand build" -l max-size -d 'Fail when an image is bigger than this (e.g. 200MB)' -r
complete -c image-builder -n "__fish_image_builder_using_subcommand build" -l via -d 'What BuildKit builds from: the generated Dockerfile, or image-builder\'s frontend image reading a generated build file (needs BuildKit)' -r -f -a "dockerfile\t'The generated Dockerfile, built by the engine\'s Dockerfile frontend'
frontend\t'A generated build file, built by image-builder\'s own BuildKit frontend'"
complete -c image-builder -n "__fish_image_builder_using_subcommand build" -l frontend-image -d 'Frontend image for `--via frontend` (default: one made from this executable, built into the engine when missing)' -r
complete -c image-builder -n "__fish_image_builder_using_subcommand build" -l kubeconfig -d 'kubeconfig used to see whether the node already has the image' -r -F
complete -c image-builder -n "__fish_image_builder_using_subcommand build" -l context -d 'kubeconfig context' -r
complete -c image-builder -n "__fish_image_builder_using_subcommand build" -s o -l output -r -f -a "text\t''
json\t''"
complete -c image-builder -n "__fish_image_builder_using_subcommand build" -l no-cache -d 'Do not use the per-file hash cache'
complete -c image-builder -n "__fish_image_builder_using_subcommand build" -l force -d 'Rebuild even when an image with the content tag exists'
complete -c image-builder -n "__fish_image_builder_using_subcommand build" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c image-builder -n "__fish_image_builder_using_subcommand frontend" -s h -l help -d 'Print help'
complete -c image-builder -n "__fish_image_builder_using_subcommand frontend-image" -l tag -d 'Image reference (default: image-builder/frontend:VERSION-ID, ID naming this executable)' -r
complete -c image-builder -n "__fish_image_builder_using_subcommand frontend-image" -l force -d 'Rebuild even when the image exists'
complete -c image-builder -n "__fish_image_builder_using_subcommand frontend-image" -s h -l help -d 'Print help'
complete -c image-builder -n "__fish_image_builder_using_subcommand completion" -s h -l help -d 'Print help'
complete -c image-builder -n "__fish_image_builder_using_subcommand load" -l to -r -f -a "minikube\t''
kind\t''
k3d\t''"
complete -c image-builder -n "__fish_image_builder_using_subcommand load" -l cluster -d 'Minikube profile, kind cluster or k3d cluster name' -r
complete -c image-builder -n "__fish_image_builder_using_subcommand load" -l kubeconfig -r -F
complete -c image-builder -n "__fish_image_builder_using_subcommand load" -l context -r
complete -c image-builder -n "__fish_image_builder_using_subcommand load" -s h -l help -d 'Print help'
complete -c image-builder -n "__fish_image_builder_using_subcommand help; and not __fish_seen_subcommand_from plan hash build frontend frontend-image completion load help" -f -a "plan" -d 'Show, per component, the stack, the Dockerfile, the input digest and the tag'
complete -c image-builder -n "__fish_image_builder_using_subcommand help; and not __fish_seen_subcommand_from plan hash build frontend frontend-image completion load help" -f -a "hash" -d 'Print the full input digest of a component directory'
complete -c image-builder -n "__fish_image_builder_using_subcommand help; and not __fish_seen_subcommand_from plan hash build frontend frontend-image completion load help" -f -a "build" -d 'Build images (skipped when the content tag exists), check, load or push them'
complete -c image-builder -n "__fish_image_builder_using_subcommand help; and not __fish_seen_subcommand_from plan hash build frontend frontend-image completion load help" -f -a "frontend" -d 'Run as a BuildKit gateway frontend (BuildKit starts this from the frontend image)'
complete -c image-builder -n "__fish_image_builder_using_subcommand help; and not __fish_seen_subcommand_from plan hash build frontend frontend-image completion load help" -f -a "frontend-image" -d 'Build the frontend image (this executable and its libraries, user 1001) into the engine'
complete -c image-builder -n "__fish_image_builder_using_subcommand help; and not __fish_seen_subcommand_from plan hash build frontend frontend-image completion load help" -f -a "completion" -d 'Print a shell completion script (bash, zsh, fish or powershell)'
complete -c image-builder -n "__fish_image_builder_using_subcommand help; and not __fish_seen_subcommand_from plan hash build frontend frontend-image completion load help" -f -a "load" -d 'Load existing images into a local cluster'
complete -c image-builder -n "__fish_image_builder_using_subcommand help; and not __fish_seen_subcommand_from plan hash build frontend frontend-image completion load help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
