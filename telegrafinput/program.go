package telegrafinput

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"
)

// Exit codes of Main.
const (
	ExitOK      = 0 // stopped by stdin EOF or a signal, or -once done
	ExitFailure = 1 // the configuration is missing or invalid, or -once could not write
	ExitUsage   = 2 // bad command line
)

// Main is the btest-telegraf program without the process around it:
//
//	btest-telegraf -config FILE [-once]
//	btest-telegraf -sample-config
//
// It runs rounds of tests until ctx ends (SIGINT, SIGTERM) or stdin
// reaches EOF (Telegraf stopping), and returns the exit code. When the
// configuration sets no interval, each line read from stdin and each value
// received from extra (SIGHUP, SIGUSR1, SIGUSR2) triggers a round;
// otherwise rounds run every interval and stdin is only watched for EOF.
// Line protocol goes to stdout, "E! "/"W! "/"I! "/"D! " lines to stderr.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, extra <-chan struct{}) int {
	log := NewLogger(stderr)
	fs := flag.NewFlagSet("btest-telegraf", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: btest-telegraf -config FILE [-once] | -sample-config")
		fmt.Fprintln(fs.Output(), "Runs MikroTik bandwidth tests for Telegraf's inputs.execd and writes line protocol.")
		fs.PrintDefaults()
	}
	path := fs.String("config", "", "configuration `file` (TOML; see -sample-config)")
	once := fs.Bool("once", false, "run one round, write it and exit (to try a configuration)")
	sample := fs.Bool("sample-config", false, "print a configuration with every option and its default, and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitUsage
	}
	switch {
	case fs.NArg() > 0:
		log.Errorf("btest-telegraf: unexpected argument %q", fs.Arg(0))
		return ExitUsage
	case *sample:
		io.WriteString(stdout, SampleConfig())
		return ExitOK
	case *path == "":
		log.Errorf("btest-telegraf: -config FILE is required (btest-telegraf -sample-config prints one)")
		return ExitUsage
	}
	cfg, warnings, err := Load(*path)
	if err != nil {
		log.Errorf("btest-telegraf: %v", err)
		return ExitFailure
	}
	for _, w := range warnings {
		log.Warnf("btest-telegraf: %s: %s", *path, w)
	}
	r := &Runner{Config: cfg, Out: stdout, Log: log}
	if *once {
		if err := r.Round(ctx); err != nil {
			log.Errorf("btest-telegraf: %v", err)
			return ExitFailure
		}
		return ExitOK
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	trig := NewTrigger()
	onLine := trig.Fire
	if cfg.Interval > 0 {
		log.Infof("btest-telegraf: %d target(s), a round every %v", len(cfg.Targets), time.Duration(cfg.Interval))
		onLine = func() bool { return false }
		go Tick(ctx, trig, time.Duration(cfg.Interval))
	} else {
		log.Infof("btest-telegraf: %d target(s), a round per line on stdin", len(cfg.Targets))
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-extra:
					trig.Fire()
				}
			}
		}()
	}
	go func() {
		defer cancel()
		err := readLines(stdin, onLine)
		if err != nil {
			log.Warnf("btest-telegraf: reading stdin: %v; stopping", err)
			return
		}
		if ctx.Err() == nil {
			log.Infof("btest-telegraf: stdin closed; stopping")
		}
	}()
	r.Serve(ctx, trig)
	return ExitOK
}

// readLines calls fire once per line of r until EOF (nil) or an error.
func readLines(r io.Reader, fire func() bool) error {
	br := bufio.NewReader(r)
	for {
		// Lines are triggers: their text does not matter, so a long one
		// is read in pieces and counts once.
		_, isPrefix, err := br.ReadLine()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if !isPrefix {
			fire()
		}
	}
}
